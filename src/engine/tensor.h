// A blob as ncnn's layers see it: 3-D (channels x height x width) feature maps
// and 1-D vectors (after global pooling and inner products), fp32, dense.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

namespace tessera::engine {

// Allocates on 64-byte boundaries. oneDNN's kernels may store to a large output
// with aligned non-temporal stores (its AVX2 resampling does, and faulted on the
// 16-byte alignment a plain std::vector gives), so tensor storage is aligned
// as oneDNN aligns its own buffers. By hand over malloc, not with the aligned
// operator new: glibc mapped large aligned blocks afresh, 4x the page faults of
// plain malloc in the realesr-animevideov3 benchmark (378 000 against 97 000)
// and a visibly slower second network; malloc reuses freed blocks.
template <typename T>
struct AlignedAllocator {
  using value_type = T;
  static constexpr uintptr_t kAlignment = 64;
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(size_t n) {
    if (n > (SIZE_MAX - kAlignment) / sizeof(T)) throw std::bad_alloc();
    void* raw = std::malloc(n * sizeof(T) + kAlignment);
    if (raw == nullptr) throw std::bad_alloc();
    // malloc aligns to 16, so at least 16 bytes lie before the aligned address:
    // room for the pointer free() needs.
    const uintptr_t aligned = (reinterpret_cast<uintptr_t>(raw) + kAlignment) & ~(kAlignment - 1);
    reinterpret_cast<void**>(aligned)[-1] = raw;
    return reinterpret_cast<T*>(aligned);
  }
  void deallocate(T* p, size_t) {
    if (p != nullptr) std::free(reinterpret_cast<void**>(p)[-1]);
  }
  template <typename U>
  bool operator==(const AlignedAllocator<U>&) const {
    return true;
  }
};

using TensorStorage = std::vector<float, AlignedAllocator<float>>;

// Storage against a plain vector of the same values (tests state expected
// values that way).
inline bool operator==(const TensorStorage& a, const std::vector<float>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

struct Tensor {
  int dims = 3;  // 1 or 3
  int c = 0;     // channels (3-D); 1 for 1-D
  int h = 0;     // 1 for 1-D
  int w = 0;     // length for 1-D
  // 0: plain c x h x w. 8: oneDNN's nChw8c — channels in groups of 8, the 8
  // innermost, the last group zero-padded — as convolutions produce it, so that
  // chains of convolutions need no reorders. Only the oneDNN backend makes these;
  // channel(), at() and plane-wise code assume block 0.
  int block = 0;
  TensorStorage data;

  static Tensor Chw(int c, int h, int w, float fill = 0.f) {
    Tensor t;
    t.dims = 3;
    t.c = c;
    t.h = h;
    t.w = w;
    t.data.assign(static_cast<size_t>(c) * h * w, fill);
    return t;
  }
  static Tensor Vector(int n, float fill = 0.f) {
    Tensor t;
    t.dims = 1;
    t.c = 1;
    t.h = 1;
    t.w = n;
    t.data.assign(static_cast<size_t>(n), fill);
    return t;
  }

  size_t plane() const { return static_cast<size_t>(h) * w; }
  size_t size() const { return data.size(); }
  float* channel(int q) { return data.data() + plane() * q; }
  const float* channel(int q) const { return data.data() + plane() * q; }
  float& at(int q, int y, int x) { return data[plane() * q + static_cast<size_t>(y) * w + x]; }
  float at(int q, int y, int x) const { return data[plane() * q + static_cast<size_t>(y) * w + x]; }
};

}  // namespace tessera::engine
