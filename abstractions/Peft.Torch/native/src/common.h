// Shared conventions of the Peft C ABI shim.
//
// Every exported function returns an int status (0 = ok, 1 = error) or a pointer (null = error),
// never lets a C++ exception cross the boundary, and leaves the message of the last failure in a
// thread-local slot that the managed side reads with peft_last_error() and turns into a
// TorchException. Tensors cross the boundary as heap-allocated at::Tensor* owned by a managed
// SafeHandle and released with peft_tensor_free.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <exception>
#include <string>

#define PEFT_API extern "C" __attribute__((visibility("default")))

namespace peft {

void set_last_error(const std::string& message);

inline at::Tensor* new_handle(at::Tensor t) { return new at::Tensor(std::move(t)); }

inline const at::Tensor& deref(const void* handle) {
  TORCH_CHECK(handle != nullptr, "null tensor handle");
  return *static_cast<const at::Tensor*>(handle);
}

}  // namespace peft

// Wraps a body so that c10::Error (without its C++ backtrace), std::exception and anything else
// becomes the thread's last error and the given failure value is returned.
#define PEFT_TRY try {
#define PEFT_CATCH(failure)                                         \
  }                                                                 \
  catch (const c10::Error& e) {                                     \
    peft::set_last_error(e.what_without_backtrace());               \
    return failure;                                                 \
  }                                                                 \
  catch (const std::exception& e) {                                 \
    peft::set_last_error(e.what());                                 \
    return failure;                                                 \
  }                                                                 \
  catch (...) {                                                     \
    peft::set_last_error("unknown native exception");               \
    return failure;                                                 \
  }
