// Reference loops in C++ on libtorch, so the managed benchmark can report how close the binding
// comes to calling libtorch directly (same ops, same threads, same process).
#include "common.h"

#include <chrono>

namespace {
template <class F>
double time_loop(int32_t warmup, int32_t iters, F&& body) {
  for (int32_t k = 0; k < warmup; ++k) body();
  const auto start = std::chrono::steady_clock::now();
  for (int32_t k = 0; k < iters; ++k) body();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

// Seconds for `iters` calls of matmul(a, b) with a:(m,k), b:(k,n), float32, after `warmup` calls.
PEFT_API double peft_bench_matmul(int64_t m, int64_t k, int64_t n, int32_t warmup, int32_t iters) {
  PEFT_TRY
  at::NoGradGuard no_grad;
  const at::Tensor a = at::randn({m, k});
  const at::Tensor b = at::randn({k, n});
  return time_loop(warmup, iters, [&] { (void)at::matmul(a, b); });
  PEFT_CATCH(-1.0)
}

// Seconds for `iters` calls of linear(x, w, bias) with x:(batch, tokens, in), w:(out, in).
PEFT_API double peft_bench_linear(int64_t batch, int64_t tokens, int64_t in_features,
                                  int64_t out_features, int32_t warmup, int32_t iters) {
  PEFT_TRY
  at::NoGradGuard no_grad;
  const at::Tensor x = at::randn({batch, tokens, in_features});
  const at::Tensor w = at::randn({out_features, in_features});
  const at::Tensor bias = at::randn({out_features});
  return time_loop(warmup, iters, [&] { (void)at::linear(x, w, bias); });
  PEFT_CATCH(-1.0)
}

// Seconds for `iters` calls of a tiny add (the per-op floor of libtorch itself).
PEFT_API double peft_bench_tiny_add(int32_t warmup, int32_t iters) {
  PEFT_TRY
  const at::Tensor a = at::ones({1});
  const at::Tensor b = at::ones({1});
  return time_loop(warmup, iters, [&] { (void)at::add(a, b); });
  PEFT_CATCH(-1.0)
}
