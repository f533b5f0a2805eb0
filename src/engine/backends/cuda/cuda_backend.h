// CUDA (NVIDIA GPUs) as an engine backend (engine/backend.h) for one device
// "cuda:N": activations NHWC (Layout::kChannelsLast; a 1-D vector is the same
// in every layout) in fp16 with fp32 arithmetic by default, fp32 with
// --precision fp32; convolutions and deconvolutions on cuDNN 9 when it loads
// (cudnn_library.h), else on the backend's direct kernels; every other layer
// on kernels of our own (cuda_kernels.h), activations and residual sums fused
// into the convolution before them.
//
// Memory goes through a caching allocator (engine/gpu/caching_allocator.h)
// bounded by --vram-budget: activations, weights and cuDNN workspaces alike,
// so that an exhausted device or budget is the typed kOutOfMemory the chunk
// planner shrinks and retries on.
//
// Each thread that runs ops gets its own stream, cuDNN handle and pinned
// staging buffer; a run's work is ordered on its stream and waited for only
// when the result is read back (ToHost).
//
// It cuts tiles itself (engine/device_tiling.h): the image is uploaded once as
// planar fp32, tiles are gathered into NHWC batches of up to 64 and their
// outputs placed into a planar fp32 output image by kernels, where a residual
// model's nearest-upscaled input is added too.
#pragma once

#include <cuda_runtime_api.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/backends/cuda/cuda_kernels.h"
#include "engine/backends/cuda/cuda_runtime.h"
#include "engine/backends/cuda/cudnn_library.h"
#include "engine/gpu/caching_allocator.h"

namespace tessera::engine::cuda {

struct CudaBackendOptions {
  DataType dtype = DataType::kF16;  // storage of activations and weights
  uint64_t vram_budget_bytes = 0;   // 0: the device's free memory
  std::chrono::milliseconds pool_idle_release{std::chrono::seconds(30)};
};

// Device memory holding a tensor's values.
class CudaBuffer : public DeviceBuffer {
 public:
  explicit CudaBuffer(gpu::DeviceBlock block) : block_(std::move(block)) {}
  size_t bytes() const override { return block_.bytes(); }
  void* data() const { return block_.data(); }

 private:
  gpu::DeviceBlock block_;
};

// What one thread uses on one device.
struct CudaThreadContext {
  int device = 0;
  cudaStream_t stream = nullptr;
  cudnnHandle_t cudnn = nullptr;  // null without cuDNN
  void* pinned = nullptr;         // page-locked staging for transfers
  size_t pinned_bytes = 0;
  cudaEvent_t staging_free = nullptr;  // the last transfer out of `pinned` is done
  uint64_t tag() const { return reinterpret_cast<uint64_t>(stream); }
  ~CudaThreadContext();
};

class CudaBackend : public Backend, public DeviceTiling {
 public:
  // kDeviceUnavailable when the device cannot be used (no driver, no such
  // device), with the reason.
  static Result<std::shared_ptr<CudaBackend>> Create(int device_index, CudaBackendOptions options);

  std::string name() const override { return "cuda"; }
  Device device() const override { return Device::Cuda(device_index_); }
  // Device name, compute capability, driver, runtime, cuDNN version, precision.
  std::string Fingerprint() const override;

  std::unique_ptr<Op> MakeOp(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights) override;

  BackendMemory ProbeMemory() const override;
  Result<Tensor> Allocate(int dims, int c, int h, int w, Layout layout, DataType dtype) const override;
  void ReleaseCachedMemory() const override;

  bool HostMemory() const override { return false; }
  Result<Tensor> FromHost(Tensor host) const override;
  Result<Tensor> ToHost(const Tensor& t) const override;
  Result<Tensor> Convert(const Tensor& t, Layout layout) const override;

  const DeviceTiling* tiling() const override { return this; }
  int MaxBatch() const override { return kernels::kMaxTileBatch; }
  Result<Tensor> UploadImage(const Tensor& host) const override;
  Result<Tensor> NewImage(int c, int h, int w) const override;
  Result<Tensor> GatherTiles(const Tensor& image, const std::vector<TileCut>& cuts, int h, int w,
                             bool reflect) const override;
  Status PlaceTiles(const Tensor& batch, const std::vector<TilePlacement>& placements, Tensor& image) const override;
  Status AddNearestInput(const Tensor& input, int scale, Tensor& output) const override;
  Result<Tensor> DownloadImage(const Tensor& image) const override;

  // For the ops.
  Result<CudaThreadContext*> Context() const;
  // A tensor of this backend's type on the calling thread's stream.
  Result<Tensor> NewTensor(int dims, int n, int c, int h, int w) const;
  Result<gpu::DeviceBlock> Scratch(uint64_t bytes, const CudaThreadContext& context) const;
  // Host values copied to the device (waits for the copy); fp32, or fp16 when `half`.
  Result<gpu::DeviceBlock> Upload(const std::vector<float>& values, bool half, const CudaThreadContext& context) const;
  DataType dtype() const { return options_.dtype; }
  DataType storage_dtype() const override { return options_.dtype; }
  const CudnnLibrary* cudnn() const { return cudnn_; }
  gpu::AllocatorStats memory_stats() const { return allocator_->stats(); }
  const CudaDeviceProperties& properties() const { return properties_; }

 private:
  CudaBackend(int device_index, CudaBackendOptions options, CudaDeviceProperties properties);

  int device_index_;
  CudaBackendOptions options_;
  CudaDeviceProperties properties_;
  const CudnnLibrary* cudnn_ = nullptr;
  std::shared_ptr<gpu::CachingAllocator> allocator_;
};

// The device pointer of a tensor this backend made.
void* DevicePointer(const Tensor& t);
// A tensor's shape as the kernels take it (a 1-D vector: n x 1 x 1 x w).
kernels::Shape4 ShapeOf(const Tensor& t);

// The op for one layer (cuda_ops.cpp, cuda_convolution.cpp); null when the
// backend does not run it.
std::unique_ptr<Op> MakeConvolutionOp(const CudaBackend& backend, const ncnn::LayerSpec& layer,
                                      const ncnn::LayerWeights& weights);
std::unique_ptr<Op> MakeLayerOp(const CudaBackend& backend, const ncnn::LayerSpec& layer,
                                const ncnn::LayerWeights& weights);

}  // namespace tessera::engine::cuda
