// A blob as ncnn's layers see it: 3-D (channels x height x width) feature maps
// and 1-D vectors (after global pooling and inner products), in a layout and a
// data type a backend chose, on the host or on a device.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <new>
#include <vector>

#include "engine/data_type.h"
#include "engine/layout.h"

namespace tessera::engine {

// The tensor block pool (engine/buffer_pool.h): 64-byte aligned blocks, large
// ones reused across layers, tiles and requests.
void* AllocateTensorBlock(size_t bytes);
void FreeTensorBlock(void* block, size_t bytes) noexcept;

// Allocates on 64-byte boundaries, from the pool. oneDNN's kernels may store to
// a large output with aligned non-temporal stores (its AVX2 resampling does, and
// faulted on the 16-byte alignment a plain std::vector gives), so tensor storage
// is aligned as oneDNN aligns its own buffers.
template <typename T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(AllocateTensorBlock(n * sizeof(T))); }
  void deallocate(T* p, size_t n) { FreeTensorBlock(p, n * sizeof(T)); }
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

// Memory a device backend owns (GPU memory); the backend that made it is the
// only one that reads it. Host tensors have none and keep their values in
// Tensor::data.
class DeviceBuffer {
 public:
  virtual ~DeviceBuffer() = default;
  virtual size_t bytes() const = 0;
};

struct Tensor {
  int dims = 3;  // 1 or 3
  int n = 1;     // batch: several tiles in one launch (the CPU backends run one at a time: n == 1)
  int c = 0;     // channels (3-D); 1 for 1-D
  int h = 0;     // 1 for 1-D
  int w = 0;     // length for 1-D
  // How the values are ordered (engine/layout.h). Only backends make tensors in
  // another layout than plain; channel(), at() and plane-wise code assume plain.
  Layout layout = Layout::kPlain;
  DataType dtype = DataType::kF32;
  TensorStorage data;                    // host values (empty when the tensor lives on a device)
  std::shared_ptr<DeviceBuffer> device;  // device values, or null for a host tensor

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
  bool on_device() const { return device != nullptr; }
  // Bytes the values take where they live (padding channels included).
  size_t bytes() const { return on_device() ? device->bytes() : data.size() * sizeof(float); }
  float* channel(int q) { return data.data() + plane() * q; }
  const float* channel(int q) const { return data.data() + plane() * q; }
  float& at(int q, int y, int x) { return data[plane() * q + static_cast<size_t>(y) * w + x]; }
  float at(int q, int y, int x) const { return data[plane() * q + static_cast<size_t>(y) * w + x]; }
};

}  // namespace tessera::engine
