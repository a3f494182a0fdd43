// A caching allocator for CPU tensors. libtorch's default CPU allocator is posix_memalign/free, so with glibc
// every block above the dynamic mmap threshold (at most 32 MiB; a ViT-B MLP activation at batch 32 is 77 MiB) is
// a fresh mmap on every training step that the kernel page-faults in and zeroes, and munmaps again when freed.
// Training repeats the same shapes step after step, so large blocks are kept when freed and handed out again,
// from any thread (glibc's own thresholds only help the main arena).
//
// Memory bound: a request the cache cannot serve first releases cached blocks (largest first) as far as needed
// for live + cached bytes to stay within the peak of live bytes (plus page rounding). A steady training loop
// then allocates nothing new after its first steps, and a change of shapes (evaluation, another model) recycles
// the cache instead of growing beside it.
//
// Installed when the shim is loaded, before any tensor exists. PEFT_HOST_ALLOCATOR=system keeps libtorch's own
// allocator and glibc's defaults; PEFT_HOST_ALLOCATOR=cache installs the cache but leaves glibc's thresholds alone.
#include "common.h"

#include <c10/core/CPUAllocator.h>

#include <cstdlib>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>

namespace {

constexpr size_t kAlignment = 64;             // c10's CPU alignment (AVX-512 loads)
constexpr size_t kMinCached = 1 << 20;        // smaller blocks go straight to malloc
constexpr size_t kPage = 4096;

struct Stats {
  int64_t live_bytes, cached_bytes, peak_live_bytes, hits, misses, released_bytes;
};

class CachingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) const override {
    if (n == 0) return {nullptr, nullptr, &Free, c10::Device(c10::DeviceType::CPU)};
    if (n < kMinCached) {
      // Small blocks: malloc's own bins serve them well, and they skip the lock.
      void* data = Fresh(n);
      return {data, data, &std::free, c10::Device(c10::DeviceType::CPU)};
    }
    void* data = self().Take(n);
    return {data, data, &Free, c10::Device(c10::DeviceType::CPU)};
  }

  // raw_allocate/raw_deallocate: one deleter for both sizes (Give hands unknown, small blocks to free).
  c10::DeleterFnPtr raw_deleter() const override { return &Free; }

  static CachingCpuAllocator& self() {
    // Never destroyed: tensors may still be freed by finalizers after static destructors ran.
    static auto* instance = new CachingCpuAllocator();
    return *instance;
  }

  Stats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  void Trim() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [size, block] : free_) {
      std::free(block);
      stats_.cached_bytes -= static_cast<int64_t>(size);
      stats_.released_bytes += static_cast<int64_t>(size);
    }
    free_.clear();
    stats_.peak_live_bytes = stats_.live_bytes;  // the bound starts again from what is lent now
  }

 private:
  static void Free(void* data) {
    if (data != nullptr) self().Give(data);
  }

  static void* Fresh(size_t size) {
    void* data = nullptr;
    if (posix_memalign(&data, kAlignment, size) != 0 || data == nullptr) {
      throw c10::Error({__func__, __FILE__, static_cast<uint32_t>(__LINE__)},
                       "DefaultCPUAllocator: can't allocate memory: you tried to allocate " + std::to_string(size) + " bytes.");
    }
    return data;
  }

  void* Take(size_t n) {
    const size_t size = (n + kPage - 1) / kPage * kPage;
    std::unique_lock<std::mutex> lock(mutex_);
    // Exact (page-rounded) sizes only: a block of a near size taken now is missed by its own shape later in the
    // step, and a training step asks for the same sizes every time.
    auto it = free_.find(size);
    if (it != free_.end()) return Reuse(it);
    // A fresh block fits when lent + cached + this request stays within the peak of lent bytes so far.
    const int64_t excess = stats_.live_bytes + stats_.cached_bytes + static_cast<int64_t>(size) - stats_.peak_live_bytes;
    if (excess > 0) {
      // It does not: rather than trade cached blocks for a fresh one (which, when a loop's sizes add up to more
      // than its peak, as a no-grad forward's do, recycles memory every step), lend a cached block up to twice
      // the size. It is resident already and counts as lent at its full size.
      it = free_.lower_bound(size);
      if (it != free_.end() && it->first <= 2 * size) return Reuse(it);
    }
    stats_.misses++;
    // Release cached blocks (largest first) only as far as needed, so the cache never adds to the peak.
    size_t released = 0;
    while (excess > 0 && static_cast<int64_t>(released) < excess && !free_.empty()) {
      auto last = std::prev(free_.end());
      std::free(last->second);
      released += last->first;
      free_.erase(last);
    }
    stats_.cached_bytes -= static_cast<int64_t>(released);
    stats_.released_bytes += static_cast<int64_t>(released);
    lock.unlock();
    void* data = Fresh(size);
    lock.lock();
    Lent(data, size);
    return data;
  }

  void* Reuse(std::multimap<size_t, void*>::iterator it) {
    void* data = it->second;
    const size_t got = it->first;
    free_.erase(it);
    stats_.cached_bytes -= static_cast<int64_t>(got);
    stats_.hits++;
    Lent(data, got);
    return data;
  }

  void Lent(void* data, size_t size) {
    sizes_[data] = size;
    stats_.live_bytes += static_cast<int64_t>(size);
    if (stats_.live_bytes > stats_.peak_live_bytes) stats_.peak_live_bytes = stats_.live_bytes;
  }

  void Give(void* data) {
    std::unique_lock<std::mutex> lock(mutex_);
    auto it = sizes_.find(data);
    if (it == sizes_.end()) {
      lock.unlock();
      std::free(data);
      return;
    }
    const size_t size = it->second;
    sizes_.erase(it);
    stats_.live_bytes -= static_cast<int64_t>(size);
    stats_.cached_bytes += static_cast<int64_t>(size);
    free_.emplace(size, data);
  }

  std::mutex mutex_;
  std::multimap<size_t, void*> free_;        // cached blocks by size
  std::unordered_map<void*, size_t> sizes_;  // every large block lent out, with its (page-rounded) size
  Stats stats_{};
};

// Set before this library's constructors run (constant-initialised literals).
const char* g_host_allocator = "libtorch's default CPU allocator";

__attribute__((constructor)) void install_host_allocator() {
  const char* choice = std::getenv("PEFT_HOST_ALLOCATOR");
  if (choice != nullptr && std::strcmp(choice, "system") == 0) {
    g_host_allocator = "libtorch's default CPU allocator (PEFT_HOST_ALLOCATOR=system)";
    return;
  }
  c10::SetCPUAllocator(&CachingCpuAllocator::self(), /*priority=*/100);
  g_host_allocator = "Peft caching allocator: blocks of 1 MiB and more reused, cache within the peak of live bytes";
  if (choice != nullptr && std::strcmp(choice, "cache") == 0) return;  // the cache alone, glibc's defaults for the rest
#if defined(__GLIBC__)
  // The rest of libtorch's host memory (its own buffers, smaller tensors) is plain malloc: stop glibc from unmapping
  // and trimming freed memory that the next step asks for again (a step 20-25 % faster on 2 cores, measured in
  // benchmarks/README.md). Only the main arena keeps it, which is the thread `peft` trains on.
  const bool tuned = std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr || std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr ||
                     std::getenv("GLIBC_TUNABLES") != nullptr;
  constexpr int threshold = 1 << 30;
  if (!tuned && mallopt(M_MMAP_THRESHOLD, threshold) == 1 && mallopt(M_TRIM_THRESHOLD, threshold) == 1)
    g_host_allocator = "Peft caching allocator: blocks of 1 MiB and more reused, cache within the peak of live bytes; "
                       "glibc mmap and trim thresholds 1 GiB";
#endif
}

}  // namespace

PEFT_API const char* peft_host_allocator() { return g_host_allocator; }

// out: live bytes, cached bytes, peak live bytes, cache hits, misses, bytes released back to malloc.
PEFT_API void peft_host_allocator_stats(int64_t* out) {
  const Stats s = CachingCpuAllocator::self().stats();
  const int64_t values[] = {s.live_bytes, s.cached_bytes, s.peak_live_bytes, s.hits, s.misses, s.released_bytes};
  std::memcpy(out, values, sizeof(values));
}

PEFT_API void peft_host_allocator_trim() { CachingCpuAllocator::self().Trim(); }
