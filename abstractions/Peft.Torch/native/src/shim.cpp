// Core of the C ABI: tensor lifecycle, blob copies, the generic boxed operator call, autograd,
// grad mode, RNG, threads and device queries.
//
// One generic entry point (peft_op_call) reaches every ATen operator through the boxed dispatcher,
// autograd included, so the shim stays small and the managed side decides which ops it exposes.
#include "common.h"

#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>
#include <torch/version.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/cuda.h>

#include <cstring>
#include <vector>

namespace peft {
namespace {
thread_local std::string g_last_error;
}
void set_last_error(const std::string& message) { g_last_error = message; }
}  // namespace peft

using peft::deref;
using peft::new_handle;

// ---- argument and result encoding -------------------------------------------------------------

enum PeftTag : int64_t {
  PEFT_DEFAULT = 0,        // use the schema's default value for this position
  PEFT_NONE = 1,           // None (optional arguments)
  PEFT_TENSOR = 2,         // v.p = at::Tensor*
  PEFT_INT = 3,            // v.i
  PEFT_DOUBLE = 4,         // v.d
  PEFT_BOOL = 5,           // v.i != 0
  PEFT_INTLIST = 6,        // v.p = int64_t*, len
  PEFT_TENSORLIST = 7,     // v.p = at::Tensor**, len
  PEFT_OPTTENSORLIST = 8,  // v.p = at::Tensor** (null entries = None), len
  PEFT_STRING = 9,         // v.p = const char* (UTF-8, NUL-terminated)
  PEFT_DEVICE = 10,        // v.i = c10::DeviceType, len = index (-1 = current)
  PEFT_DOUBLELIST = 11,    // v.p = double*, len
};

struct PeftArg {
  int64_t tag;
  union {
    int64_t i;
    double d;
    void* p;
  } v;
  int64_t len;
};

struct PeftRet {
  int64_t tag;  // PEFT_NONE, PEFT_TENSOR (new handle), PEFT_INT, PEFT_DOUBLE, PEFT_BOOL
  union {
    int64_t i;
    double d;
    void* p;
  } v;
};

namespace {

c10::IValue to_ivalue(const PeftArg& a, const c10::Argument& formal) {
  switch (a.tag) {
    case PEFT_DEFAULT:
      if (formal.default_value()) return *formal.default_value();
      if (formal.type()->kind() == c10::TypeKind::OptionalType) return c10::IValue();
      TORCH_CHECK(false, "argument '", formal.name(), "' has no default value");
    case PEFT_NONE:
      return c10::IValue();
    case PEFT_TENSOR:
      return c10::IValue(deref(a.v.p));
    case PEFT_INT:
      return c10::IValue(a.v.i);
    case PEFT_DOUBLE:
      return c10::IValue(a.v.d);
    case PEFT_BOOL:
      return c10::IValue(a.v.i != 0);
    case PEFT_INTLIST: {
      const auto* p = static_cast<const int64_t*>(a.v.p);
      return c10::IValue(std::vector<int64_t>(p, p + a.len));
    }
    case PEFT_DOUBLELIST: {
      const auto* p = static_cast<const double*>(a.v.p);
      return c10::IValue(std::vector<double>(p, p + a.len));
    }
    case PEFT_TENSORLIST: {
      auto** p = static_cast<at::Tensor**>(a.v.p);
      std::vector<at::Tensor> list;
      list.reserve(a.len);
      for (int64_t k = 0; k < a.len; ++k) list.push_back(deref(p[k]));
      return c10::IValue(list);
    }
    case PEFT_OPTTENSORLIST: {
      auto** p = static_cast<at::Tensor**>(a.v.p);
      c10::List<c10::optional<at::Tensor>> list;
      list.reserve(a.len);
      for (int64_t k = 0; k < a.len; ++k)
        list.push_back(p[k] ? c10::optional<at::Tensor>(*p[k]) : c10::nullopt);
      return c10::IValue(list);
    }
    case PEFT_STRING:
      return c10::IValue(std::string(static_cast<const char*>(a.v.p)));
    case PEFT_DEVICE:
      return c10::IValue(c10::Device(static_cast<c10::DeviceType>(a.v.i),
                                     static_cast<c10::DeviceIndex>(a.len)));
    default:
      TORCH_CHECK(false, "unknown argument tag ", a.tag, " for '", formal.name(), "'");
  }
}

// Flattens one returned IValue into results; tuples and tensor lists expand in order.
void push_result(const c10::IValue& v, std::vector<PeftRet>& out) {
  PeftRet r{};
  if (v.isTensor()) {
    const auto& t = v.toTensor();
    if (t.defined()) {
      r.tag = PEFT_TENSOR;
      r.v.p = new_handle(t);
    } else {
      r.tag = PEFT_NONE;
    }
  } else if (v.isTensorList()) {
    for (const at::Tensor& t : v.toTensorVector()) push_result(c10::IValue(t), out);
    return;
  } else if (v.isTuple()) {
    for (const auto& e : v.toTupleRef().elements()) push_result(e, out);
    return;
  } else if (v.isInt()) {
    r.tag = PEFT_INT;
    r.v.i = v.toInt();
  } else if (v.isDouble()) {
    r.tag = PEFT_DOUBLE;
    r.v.d = v.toDouble();
  } else if (v.isBool()) {
    r.tag = PEFT_BOOL;
    r.v.i = v.toBool() ? 1 : 0;
  } else if (v.isScalar()) {
    const auto s = v.toScalar();
    if (s.isIntegral(false)) {
      r.tag = PEFT_INT;
      r.v.i = s.toLong();
    } else if (s.isBoolean()) {
      r.tag = PEFT_BOOL;
      r.v.i = s.toBool() ? 1 : 0;
    } else {
      r.tag = PEFT_DOUBLE;
      r.v.d = s.toDouble();
    }
  } else if (v.isNone()) {
    r.tag = PEFT_NONE;
  } else {
    TORCH_CHECK(false, "unsupported return type ", v.tagKind());
  }
  out.push_back(r);
}

void free_results(std::vector<PeftRet>& results) {
  for (auto& r : results)
    if (r.tag == PEFT_TENSOR) delete static_cast<at::Tensor*>(r.v.p);
  results.clear();
}

}  // namespace

// ---- library -----------------------------------------------------------------------------------

PEFT_API const char* peft_last_error() { return peft::g_last_error.c_str(); }

PEFT_API const char* peft_torch_version() { return TORCH_VERSION; }

PEFT_API const char* peft_build_config() {
  static thread_local std::string config;
  try {
    config = at::show_config() + "\n" + at::get_parallel_info();
  } catch (...) {
    config = "";
  }
  return config.c_str();
}

PEFT_API int peft_set_num_threads(int32_t n) {
  PEFT_TRY
  at::set_num_threads(n);
  return 0;
  PEFT_CATCH(1)
}

PEFT_API int32_t peft_get_num_threads() { return at::get_num_threads(); }

PEFT_API int peft_manual_seed(uint64_t seed) {
  PEFT_TRY
  at::manual_seed(seed);
  return 0;
  PEFT_CATCH(1)
}

PEFT_API int32_t peft_cuda_device_count() {
  try {
    return static_cast<int32_t>(torch::cuda::device_count());
  } catch (...) {
    return 0;
  }
}

PEFT_API int32_t peft_grad_enabled() { return at::GradMode::is_enabled() ? 1 : 0; }

// Sets grad mode on the calling thread and returns the previous mode.
PEFT_API int32_t peft_set_grad_enabled(int32_t enabled) {
  const bool previous = at::GradMode::is_enabled();
  at::GradMode::set_enabled(enabled != 0);
  return previous ? 1 : 0;
}

// ---- operators ---------------------------------------------------------------------------------

// Returns an operator handle for name/overload (e.g. "aten::add", "Tensor"), or null when the
// linked libtorch does not have it (the caller then uses a fallback).
PEFT_API void* peft_op_find(const char* name, const char* overload) {
  PEFT_TRY
  auto op = c10::Dispatcher::singleton().findSchema({name, overload});
  if (!op.has_value()) {
    peft::set_last_error(std::string("operator ") + name + (overload[0] ? "." : "") + overload +
                         " is not available in libtorch " + TORCH_VERSION);
    return nullptr;
  }
  return new c10::OperatorHandle(*op);
  PEFT_CATCH(nullptr)
}

PEFT_API const char* peft_op_schema(void* op) {
  static thread_local std::string text;
  try {
    std::ostringstream s;
    s << static_cast<c10::OperatorHandle*>(op)->schema();
    text = s.str();
  } catch (...) {
    text = "";
  }
  return text.c_str();
}

// Calls an operator with positional arguments; missing trailing arguments take schema defaults.
// Results are written to outs (up to max_outs; extra tensors are released) and their count to
// *n_outs. With max_outs == 0 all results are discarded (in-place ops).
PEFT_API int peft_op_call(void* op_handle, const PeftArg* args, int32_t n_args, PeftRet* outs,
                          int32_t max_outs, int32_t* n_outs) {
  std::vector<PeftRet> results;
  PEFT_TRY
  auto& op = *static_cast<c10::OperatorHandle*>(op_handle);
  const auto& formals = op.schema().arguments();
  TORCH_CHECK(static_cast<size_t>(n_args) <= formals.size(), op.schema().name(), " takes ",
              formals.size(), " arguments, ", n_args, " given");
  torch::jit::Stack stack;
  stack.reserve(formals.size());
  for (size_t k = 0; k < formals.size(); ++k) {
    if (k < static_cast<size_t>(n_args)) {
      stack.push_back(to_ivalue(args[k], formals[k]));
    } else {
      PeftArg dflt{};
      stack.push_back(to_ivalue(dflt, formals[k]));
    }
  }
  op.callBoxed(&stack);
  if (max_outs > 0) {
    results.reserve(stack.size());
    for (const auto& v : stack) push_result(v, results);
    const int32_t n = static_cast<int32_t>(results.size());
    for (int32_t k = 0; k < n && k < max_outs; ++k) outs[k] = results[k];
    // Release what the caller has no room for.
    for (int32_t k = max_outs; k < n; ++k)
      if (results[k].tag == PEFT_TENSOR) delete static_cast<at::Tensor*>(results[k].v.p);
    *n_outs = n < max_outs ? n : max_outs;
  } else if (n_outs) {
    *n_outs = 0;
  }
  return 0;
  }
  catch (const c10::Error& e) {
    free_results(results);
    peft::set_last_error(e.what_without_backtrace());
    return 1;
  }
  catch (const std::exception& e) {
    free_results(results);
    peft::set_last_error(e.what());
    return 1;
  }
  catch (...) {
    free_results(results);
    peft::set_last_error("unknown native exception");
    return 1;
  }
}

// ---- tensors -----------------------------------------------------------------------------------

PEFT_API void peft_tensor_free(void* t) { delete static_cast<at::Tensor*>(t); }

// A second handle to the same tensor (same storage, same autograd identity).
PEFT_API void* peft_tensor_alias(void* t) {
  PEFT_TRY
  return new_handle(deref(t));
  PEFT_CATCH(nullptr)
}

// Creates a tensor by copying nbytes of host memory laid out contiguously in the given dtype.
PEFT_API void* peft_tensor_from_data(const void* data, int64_t nbytes, const int64_t* shape,
                                     int32_t ndim, int32_t dtype, int32_t device_type,
                                     int32_t device_index) {
  PEFT_TRY
  auto options = at::TensorOptions().dtype(static_cast<c10::ScalarType>(dtype));
  at::Tensor cpu = at::empty(at::IntArrayRef(shape, ndim), options);
  TORCH_CHECK(static_cast<int64_t>(cpu.nbytes()) == nbytes, "data has ", nbytes,
              " bytes but shape ", cpu.sizes(), " of ", cpu.scalar_type(), " needs ", cpu.nbytes());
  if (nbytes > 0) std::memcpy(cpu.data_ptr(), data, nbytes);
  const c10::Device device(static_cast<c10::DeviceType>(device_type),
                           static_cast<c10::DeviceIndex>(device_index));
  return new_handle(device.is_cpu() ? cpu : cpu.to(device));
  PEFT_CATCH(nullptr)
}

// Copies the tensor's elements (made contiguous, moved to the CPU) into dst; nbytes must match.
PEFT_API int peft_tensor_copy_to(void* t, void* dst, int64_t nbytes) {
  PEFT_TRY
  at::Tensor c = deref(t).detach().to(at::kCPU).contiguous();
  TORCH_CHECK(static_cast<int64_t>(c.nbytes()) == nbytes, "destination has ", nbytes,
              " bytes, tensor ", c.sizes(), " of ", c.scalar_type(), " has ", c.nbytes());
  if (nbytes > 0) std::memcpy(dst, c.data_ptr(), nbytes);
  return 0;
  PEFT_CATCH(1)
}

// Metadata in one call. shape must have room for 16 dimensions.
PEFT_API int peft_tensor_info(void* t, int32_t* dtype, int32_t* ndim, int64_t* shape,
                              int32_t* device_type, int32_t* device_index, int32_t* requires_grad) {
  PEFT_TRY
  const at::Tensor& x = deref(t);
  TORCH_CHECK(x.defined(), "tensor is undefined");
  TORCH_CHECK(x.dim() <= 16, "tensors with more than 16 dimensions are not supported");
  *dtype = static_cast<int32_t>(x.scalar_type());
  *ndim = static_cast<int32_t>(x.dim());
  for (int64_t k = 0; k < x.dim(); ++k) shape[k] = x.size(k);
  *device_type = static_cast<int32_t>(x.device().type());
  *device_index = x.device().index();
  *requires_grad = x.requires_grad() ? 1 : 0;
  return 0;
  PEFT_CATCH(1)
}

PEFT_API int peft_tensor_set_requires_grad(void* t, int32_t value) {
  PEFT_TRY
  deref(t).set_requires_grad(value != 0);
  return 0;
  PEFT_CATCH(1)
}

PEFT_API int32_t peft_tensor_requires_grad(void* t) {
  try {
    return deref(t).requires_grad() ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

PEFT_API int32_t peft_tensor_is_leaf(void* t) {
  try {
    return deref(t).is_leaf() ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

// Pointer to the first element of a CPU tensor (for zero-copy reads of contiguous tensors).
PEFT_API void* peft_tensor_data_ptr(void* t) {
  PEFT_TRY
  const at::Tensor& x = deref(t);
  TORCH_CHECK(x.device().is_cpu(), "data_ptr needs a CPU tensor");
  return x.data_ptr();
  PEFT_CATCH(nullptr)
}

// ---- autograd ----------------------------------------------------------------------------------

PEFT_API int peft_tensor_backward(void* t, void* grad, int32_t retain_graph) {
  PEFT_TRY
  at::Tensor g = grad ? deref(grad) : at::Tensor();
  deref(t).backward(g, retain_graph != 0, false);
  return 0;
  PEFT_CATCH(1)
}

// *out = new handle to .grad, or null when the tensor has no gradient yet.
PEFT_API int peft_tensor_grad(void* t, void** out) {
  PEFT_TRY
  const at::Tensor& g = deref(t).grad();
  *out = g.defined() ? new_handle(g) : nullptr;
  return 0;
  PEFT_CATCH(1)
}

// Sets .grad (null clears it, as zero_grad(set_to_none=True) does).
PEFT_API int peft_tensor_set_grad(void* t, void* grad) {
  PEFT_TRY
  deref(t).mutable_grad() = grad ? deref(grad) : at::Tensor();
  return 0;
  PEFT_CATCH(1)
}

// ---- RNG state (for checkpoints) ---------------------------------------------------------------

PEFT_API void* peft_rng_get_state() {
  PEFT_TRY
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return new_handle(gen.get_state());
  PEFT_CATCH(nullptr)
}

PEFT_API int peft_rng_set_state(void* state) {
  PEFT_TRY
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(deref(state));
  return 0;
  PEFT_CATCH(1)
}
