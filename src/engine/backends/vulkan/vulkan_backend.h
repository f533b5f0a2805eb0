// Vulkan compute as an engine backend (engine/backend.h) for one device
// "vulkan:N": any GPU with a Vulkan driver (NVIDIA, AMD, Intel, integrated),
// and Mesa's llvmpipe on the CPU, which is how it is tested.
//
// Tensors are plain NCHW (Layout::kPlain; a batch of n items one after the
// other), fp32, or fp16 where the device has 16-bit storage and the backend was
// made with dtype kF16 (--precision fp16): every shader then runs its _fp16
// variant, which widens values to fp32 on load and rounds them on store
// (shaders/storage.glsl); weights stay fp32. FromHost and ToHost convert on the
// host (round to nearest even). Plain because the host, the reference kernels
// and the CPU fallback all read it, so moving a tensor between them is a copy
// with no reordering, and because a shader with one invocation per output value
// reads NCHW as simply as any other layout; a layout chosen for speed (channels
// in vec4 groups, as ncnn's Vulkan path packs them) is later work.
//
// Layers run as compute shaders embedded in the binary (vulkan_shaders.h):
// Convolution and Deconvolution (bias, activation and a following PReLU or
// residual sum fused), PReLU, Eltwise, BinaryOp, Concat, Crop, PixelShuffle,
// Interp (nearest, bilinear, bicubic), Scale, global average Pooling and
// InnerProduct: every layer of the 26 models. Declined (the executor runs
// them on the CPU backend): what the model checker refuses anyway — ncnn's
// negative "same" pads, windowed pooling — and activations it does not know.
//
// A batch of tiles is recorded once per shape and replayed after
// (BeginCapture, vulkan_recording.h).
//
// Tiles are cut and placed on the device (tiling(), vulkan_tiling.cpp; in
// either precision, the images fp32): the image goes up once, tiles of one size run as one batch,
// the output comes back once. The model upscaler uses it only for a model whose every layer
// runs here (GraphExecutor::RunsWhollyOnBackend); a batch of k tiles needs
// about k times one tile's memory, so a smaller chunk after an out-of-memory
// really needs less.
//
// Memory goes through the engine's caching allocator (engine/gpu/) over a
// sub-allocator of large VkDeviceMemory blocks (vulkan_memory.h), bounded by
// --vram-budget; an exhausted device or budget is kOutOfMemory. Every block
// is allocated for "stream" 0, whatever the thread: all work on the device is
// recorded in one order into one queue with a barrier after every command
// (vulkan_device.h), so a freed block reused by any thread is used after its
// previous user's commands, without a wait.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/backends/vulkan/vulkan_device.h"
#include "engine/backends/vulkan/vulkan_recording.h"
#include "engine/gpu/caching_allocator.h"

namespace tessera::engine::vulkan {

struct VulkanBackendOptions {
  DataType dtype = DataType::kF32;  // kF16: fp16 activations (the device must have 16-bit storage)
  uint64_t vram_budget_bytes = 0;  // 0: the device's free memory
  std::chrono::milliseconds pool_idle_release{std::chrono::seconds(30)};
  // Tests: false makes tiling() null, so tiles go through the host one at a
  // time (the path the device path's bytes are compared with).
  bool device_tiling = true;
  // Tests: false makes BeginCapture null, so every batch records its layers
  // afresh (the path a replay's bytes are compared with).
  bool record_runs = true;
  std::string pipeline_cache_dir;  // VulkanDevice::UsePipelineCacheDir's (empty: none)
};

// Device memory holding a tensor's values.
class VulkanBuffer : public DeviceBuffer {
 public:
  VulkanBuffer(gpu::DeviceBlock block, uint64_t bytes) : block_(std::move(block)), bytes_(bytes) {}
  size_t bytes() const override { return block_.bytes(); }
  // The tensor's values: its own bytes, not the size class around them.
  BufferSpan span() const;

 private:
  gpu::DeviceBlock block_;
  uint64_t bytes_;
};

class VulkanBackend : public Backend {
 public:
  // kDeviceUnavailable with the reason when the device cannot be opened.
  static Result<std::shared_ptr<VulkanBackend>> Create(int device_index, VulkanBackendOptions options);

  std::string name() const override { return "vulkan"; }
  Device device() const override { return Device::Vulkan(device_->index()); }
  // Device name and type, vendor and device ids, driver and API versions, precision.
  std::string Fingerprint() const override;

  std::unique_ptr<Op> MakeOp(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights) override;

  BackendMemory ProbeMemory() const override;
  Result<Tensor> Allocate(int dims, int c, int h, int w, Layout layout, DataType dtype) const override;
  void ReleaseCachedMemory() const override;
  // In either precision (vulkan_tiling.cpp); the model upscaler uses it for a
  // model whose every layer runs here.
  const DeviceTiling* tiling() const override {
    return options_.device_tiling ? tiling_.get() : nullptr;
  }

  bool HostMemory() const override { return false; }
  Result<Tensor> FromHost(Tensor host) const override;
  Result<Tensor> ToHost(const Tensor& t) const override;
  Result<Tensor> Convert(const Tensor& t, Layout layout) const override;
  // Pipelines (one per shader, any shape) and weights are all it prepares.
  bool PreparesPerShape() const override { return false; }
  // Whole runs recorded once per input shape and replayed (vulkan_recording.h).
  Result<std::unique_ptr<RunCapture>> BeginCapture(const Tensor& input) const override;
  // While this thread records a run on this backend: `held` kept as long as
  // the recording — memory its commands name that an op would otherwise let
  // go (a size's bicubic taps). A no-op otherwise.
  void KeepWhileRecorded(std::shared_ptr<const void> held) const;
  // The recordings holding memory, and how much (ProbeMemory counts it free:
  // it is given back on demand).
  size_t recordings() const;
  uint64_t recorded_bytes() const;

  // For the ops.
  VulkanDevice& gpu() const { return *device_; }
  // The storage type of this backend's tensors, and `shader`'s variant for it.
  DataType dtype() const { return options_.dtype; }
  DataType storage_dtype() const override { return options_.dtype; }
  ShaderRef Shader(ShaderId shader) const { return {shader, options_.dtype == DataType::kF16}; }
  // A plain tensor of this backend's dtype (values unspecified).
  Result<Tensor> NewTensor(int dims, int n, int c, int h, int w) const {
    return NewTensor(dims, n, c, h, w, options_.dtype);
  }
  // One of another dtype: the fp32 images of device tiling on an fp16 backend.
  Result<Tensor> NewTensor(int dims, int n, int c, int h, int w, DataType dtype) const;
  // Host values (weights, biases, slopes) in device memory of their own.
  Result<gpu::DeviceBlock> Upload(const std::vector<float>& values) const;
  // A small buffer bound where a shader declares a binding it does not read
  // this time (no bias, nothing fused): every binding must name memory.
  BufferSpan Unused() const;
  gpu::AllocatorStats memory_stats() const { return allocator_->stats(); }

 private:
  VulkanBackend(std::shared_ptr<VulkanDevice> device, VulkanBackendOptions options);
  // A tensor's memory: the recording's arena while this thread records one,
  // else the allocator's (recordings' memory given back when it has no room).
  Result<gpu::DeviceBlock> TensorMemory(uint64_t bytes) const;

  std::shared_ptr<VulkanDevice> device_;
  VulkanBackendOptions options_;
  std::shared_ptr<gpu::CachingAllocator> allocator_;
  std::shared_ptr<RecordingRegistry> recordings_;
  gpu::DeviceBlock unused_;
  std::unique_ptr<DeviceTiling> tiling_;
};

// The span of a tensor this backend made (null buffer for any other tensor).
BufferSpan SpanOf(const Tensor& t);
BufferSpan SpanOf(const gpu::DeviceBlock& block);
// The values a tensor holds (n x c x h x w, or n x w for a vector).
uint64_t CountOf(const Tensor& t);

// The op for one layer (vulkan_ops.cpp, vulkan_convolution.cpp,
// vulkan_layer_ops.cpp); null when the backend does not run it (the executor
// then runs it on the CPU backend).
std::unique_ptr<Op> MakeConvolutionOp(const VulkanBackend& backend, const ncnn::LayerSpec& layer,
                                      const ncnn::LayerWeights& weights);
std::unique_ptr<Op> MakeLayerOp(const VulkanBackend& backend, const ncnn::LayerSpec& layer,
                                const ncnn::LayerWeights& weights);
// Scale, global average Pooling, InnerProduct.
std::unique_ptr<Op> MakeSqueezeExcitationOp(const VulkanBackend& backend, const ncnn::LayerSpec& layer,
                                            const ncnn::LayerWeights& weights);
std::unique_ptr<Op> MakeBicubicInterpOp(const VulkanBackend& backend, const ncnn::LayerSpec& layer);

// Cutting and placing tiles on `backend`'s device (vulkan_tiling.cpp).
std::unique_ptr<DeviceTiling> MakeVulkanTiling(const VulkanBackend& backend);

}  // namespace tessera::engine::vulkan
