#include "engine/backends/cuda/cuda_backend.h"

#include <cuda_fp16.h>

#include <cstring>
#include <map>
#include <mutex>

#include "engine/gpu/held_memory.h"
#include "engine/ncnn/layer_table.h"
#include "util/log.h"

namespace tessera::engine::cuda {
namespace {

size_t ElementBytes(DataType dtype) { return dtype == DataType::kF16 ? 2 : 4; }

// Streams, handles and staging per thread and device; freed when the thread ends.
std::map<int, std::unique_ptr<CudaThreadContext>>& ThreadContexts() {
  thread_local std::map<int, std::unique_ptr<CudaThreadContext>> contexts;
  return contexts;
}

// Grows the thread's pinned staging buffer to `bytes`, after the transfer that
// last used it.
Status EnsurePinned(CudaThreadContext* context, size_t bytes) {
  Status s = CudaStatus(cudaEventSynchronize(context->staging_free), "waiting for a transfer");
  if (!s.ok() || context->pinned_bytes >= bytes) return s;
  if (context->pinned != nullptr) cudaFreeHost(context->pinned);
  context->pinned = nullptr;
  context->pinned_bytes = 0;
  s = CudaStatus(cudaHostAlloc(&context->pinned, bytes, cudaHostAllocDefault), "pinned staging buffer");
  if (!s.ok()) return s;
  context->pinned_bytes = bytes;
  return Status::Ok();
}

}  // namespace

CudaThreadContext::~CudaThreadContext() {
  // At process exit the runtime may already be gone; its calls then fail harmlessly.
  if (cudnn != nullptr) {
    if (const CudnnLibrary* lib = LoadCudnn()) lib->cudnnDestroy(cudnn);
  }
  if (pinned != nullptr) cudaFreeHost(pinned);
  if (staging_free != nullptr) cudaEventDestroy(staging_free);
  if (stream != nullptr) cudaStreamDestroy(stream);
}

void* DevicePointer(const Tensor& t) {
  const auto* buffer = static_cast<const CudaBuffer*>(t.device.get());
  return buffer != nullptr ? buffer->data() : nullptr;
}

kernels::Shape4 ShapeOf(const Tensor& t) {
  if (t.dims == 1) return {t.n, 1, 1, t.w};
  return {t.n, t.h, t.w, t.c};
}

Result<std::shared_ptr<CudaBackend>> CudaBackend::Create(int device_index, CudaBackendOptions options) {
  Result<CudaDeviceProperties> properties = DeviceProperties(device_index);
  if (!properties.ok()) return properties.status();
  std::shared_ptr<CudaBackend> backend(new CudaBackend(device_index, options, std::move(properties).value()));
  return backend;
}

CudaBackend::CudaBackend(int device_index, CudaBackendOptions options, CudaDeviceProperties properties)
    : device_index_(device_index), options_(options), properties_(std::move(properties)) {
  std::string why;
  cudnn_ = LoadCudnn(&why);
  if (cudnn_ == nullptr) {
    LogWarn("cuda_without_cudnn").Field("device", device().Name()).Field("reason", why).Field(
        "effect", "convolutions run on the backend's direct kernels (slow)");
  }
  gpu::CachingAllocatorOptions allocator_options;
  allocator_options.budget_bytes = options.vram_budget_bytes;
  allocator_options.idle_release = options.pool_idle_release;
  allocator_ = gpu::CachingAllocator::Create(std::make_shared<CudaDeviceMemory>(device_index), allocator_options);
  gpu::RegisterHeldMemory(device(), allocator_);
}

std::string CudaBackend::Fingerprint() const {
  return "device=" + properties_.name + " cc=" + std::to_string(properties_.major) + "." +
         std::to_string(properties_.minor) + " driver=" + std::to_string(properties_.driver_version) +
         " runtime=" + std::to_string(properties_.runtime_version) +
         " cudnn=" + (cudnn_ != nullptr ? CudnnVersionText(cudnn_->version) : std::string("none")) +
         " precision=" + (options_.dtype == DataType::kF16 ? "fp16" : "fp32");
}

std::unique_ptr<Op> CudaBackend::MakeOp(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights) {
  const ncnn::LayerInfo* info = ncnn::InfoOf(layer.kind);
  if (info == nullptr || info->graph_only) return nullptr;
  if (layer.kind == ncnn::LayerKind::kConvolution || layer.kind == ncnn::LayerKind::kDeconvolution) {
    return MakeConvolutionOp(*this, layer, weights);
  }
  return MakeLayerOp(*this, layer, weights);
}

Result<CudaThreadContext*> CudaBackend::Context() const {
  auto& contexts = ThreadContexts();
  auto it = contexts.find(device_index_);
  if (it != contexts.end()) {
    Status s = CudaStatus(cudaSetDevice(device_index_), "cudaSetDevice");
    if (!s.ok()) return s;
    return it->second.get();
  }
  auto context = std::make_unique<CudaThreadContext>();
  context->device = device_index_;
  Status s = CudaStatus(cudaSetDevice(device_index_), "cudaSetDevice");
  if (s.ok()) s = CudaStatus(cudaStreamCreateWithFlags(&context->stream, cudaStreamNonBlocking), "cudaStreamCreate");
  if (s.ok()) s = CudaStatus(cudaEventCreateWithFlags(&context->staging_free, cudaEventDisableTiming), "cudaEventCreate");
  if (!s.ok()) return s;
  if (cudnn_ != nullptr) {
    cudnnStatus_t status = cudnn_->cudnnCreate(&context->cudnn);
    if (status == CUDNN_STATUS_SUCCESS) status = cudnn_->cudnnSetStream(context->cudnn, context->stream);
    if (status != CUDNN_STATUS_SUCCESS) {
      return Status(status == CUDNN_STATUS_ALLOC_FAILED ? StatusCode::kOutOfMemory : StatusCode::kInternal,
                    std::string("cudnnCreate: ") + cudnn_->cudnnGetErrorString(status));
    }
  }
  CudaThreadContext* raw = context.get();
  contexts.emplace(device_index_, std::move(context));
  return raw;
}

Result<gpu::DeviceBlock> CudaBackend::Scratch(uint64_t bytes, const CudaThreadContext& context) const {
  return allocator_->Allocate(bytes, context.tag());
}

Result<Tensor> CudaBackend::NewTensor(int dims, int n, int c, int h, int w) const {
  if ((dims != 1 && dims != 3) || n <= 0 || c <= 0 || h <= 0 || w <= 0) {
    return InvalidError("a tensor of " + std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(h) + "x" +
                        std::to_string(w) + " cannot exist");
  }
  Result<CudaThreadContext*> context = Context();
  if (!context.ok()) return context.status();
  Tensor t;
  t.dims = dims;
  t.n = n;
  t.c = dims == 3 ? c : 1;
  t.h = dims == 3 ? h : 1;
  t.w = w;
  t.layout = Layout::kChannelsLast;
  t.dtype = options_.dtype;
  Result<gpu::DeviceBlock> block = Scratch(ShapeOf(t).count() * ElementBytes(t.dtype), **context);
  if (!block.ok()) return block.status();
  t.device = std::make_shared<CudaBuffer>(std::move(block).value());
  return t;
}

Result<gpu::DeviceBlock> CudaBackend::Upload(const std::vector<float>& values, bool half,
                                             const CudaThreadContext& context) const {
  std::vector<uint16_t> halves;
  const void* source = values.data();
  size_t bytes = values.size() * sizeof(float);
  if (half) {
    halves.resize(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      const __half h = __float2half_rn(values[i]);
      std::memcpy(&halves[i], &h, sizeof(h));
    }
    source = halves.data();
    bytes = halves.size() * sizeof(uint16_t);
  }
  Result<gpu::DeviceBlock> block = allocator_->Allocate(bytes, context.tag());
  if (!block.ok()) return block.status();
  Status s = CudaStatus(cudaMemcpyAsync(block->data(), source, bytes, cudaMemcpyHostToDevice, context.stream),
                        "uploading weights");
  if (s.ok()) s = CudaStatus(cudaStreamSynchronize(context.stream), "uploading weights");
  if (!s.ok()) return s;
  return block;
}

BackendMemory CudaBackend::ProbeMemory() const {
  BackendMemory memory;
  Result<gpu::DeviceMemoryInfo> info = allocator_->Probe();
  if (!info.ok()) return memory;
  memory.known = true;
  memory.free_bytes = info->free_bytes;
  memory.total_bytes = info->total_bytes;
  return memory;
}

Result<Tensor> CudaBackend::Allocate(int dims, int c, int h, int w, Layout layout, DataType dtype) const {
  if (dims == 3 && layout != Layout::kChannelsLast) {
    return Status(StatusCode::kUnsupported, "the CUDA backend keeps feature maps channels-last");
  }
  if (dtype != options_.dtype) return Status(StatusCode::kUnsupported, "the CUDA backend runs one precision per model");
  return NewTensor(dims, 1, c, h, w);
}

void CudaBackend::ReleaseCachedMemory() const { allocator_->ReleaseCached(); }

Result<Tensor> CudaBackend::FromHost(Tensor host) const {
  if (host.on_device() || host.layout != Layout::kPlain || host.dtype != DataType::kF32) {
    return InvalidError("FromHost takes a plain fp32 host tensor");
  }
  Result<Tensor> out = NewTensor(host.dims, host.n, host.c, host.h, host.w);
  if (!out.ok()) return out.status();
  CudaThreadContext* context = *Context();
  const size_t bytes = host.data.size() * sizeof(float);
  if (bytes != ShapeOf(*out).count() * sizeof(float)) return InvalidError("host tensor size does not match its shape");
  Result<gpu::DeviceBlock> staging = Scratch(bytes, *context);
  if (!staging.ok()) return staging.status();
  Status s = EnsurePinned(context, bytes);
  if (!s.ok()) return s;
  std::memcpy(context->pinned, host.data.data(), bytes);
  s = CudaStatus(cudaMemcpyAsync(staging->data(), context->pinned, bytes, cudaMemcpyHostToDevice, context->stream),
                 "upload");
  if (s.ok()) s = CudaStatus(cudaEventRecord(context->staging_free, context->stream), "upload");
  if (!s.ok()) return s;
  kernels::Shape4 shape = ShapeOf(*out);
  kernels::PlanarToNhwc(static_cast<const float*>(staging->data()), DevicePointer(*out), out->dtype, shape,
                        context->stream);
  s = LastLaunchStatus("layout of an uploaded tensor");
  if (!s.ok()) return s;
  return out;
}

Result<Tensor> CudaBackend::ToHost(const Tensor& t) const {
  if (!t.on_device()) return InvalidError("ToHost takes a tensor of the CUDA backend");
  Result<CudaThreadContext*> context_or = Context();
  if (!context_or.ok()) return context_or.status();
  CudaThreadContext* context = *context_or;
  const kernels::Shape4 shape = ShapeOf(t);
  const size_t bytes = shape.count() * sizeof(float);
  Result<gpu::DeviceBlock> staging = Scratch(bytes, *context);
  if (!staging.ok()) return staging.status();
  kernels::NhwcToPlanar(DevicePointer(t), t.dtype, static_cast<float*>(staging->data()), shape, context->stream);
  Status s = LastLaunchStatus("layout of a downloaded tensor");
  if (s.ok()) s = EnsurePinned(context, bytes);
  if (s.ok()) {
    s = CudaStatus(cudaMemcpyAsync(context->pinned, staging->data(), bytes, cudaMemcpyDeviceToHost, context->stream),
                   "download");
  }
  if (s.ok()) s = CudaStatus(cudaEventRecord(context->staging_free, context->stream), "download");
  // Every kernel of the run ends here: a fault in any of them surfaces now.
  if (s.ok()) s = CudaStatus(cudaStreamSynchronize(context->stream), "running the model on " + device().Name());
  if (!s.ok()) return s;
  Tensor host;
  host.dims = t.dims;
  host.n = t.n;
  host.c = t.c;
  host.h = t.h;
  host.w = t.w;
  try {
    host.data.resize(shape.count());
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kOutOfMemory, "host memory exhausted");
  }
  std::memcpy(host.data.data(), context->pinned, bytes);
  return host;
}

Result<Tensor> CudaBackend::Convert(const Tensor& t, Layout layout) const {
  if (!t.on_device()) return InvalidError("Convert takes a tensor of the CUDA backend");
  if (layout == Layout::kChannelsLast || t.dims == 1) {
    Tensor same = t;  // the same memory: a vector reads the same in every layout
    same.layout = layout;
    return same;
  }
  return Status(StatusCode::kUnsupported, "the CUDA backend keeps feature maps channels-last");
}

// ---- tiles on the device (engine/device_tiling.h) ----------------------------

Result<Tensor> CudaBackend::NewImage(int c, int h, int w) const {
  if (c <= 0 || h <= 0 || w <= 0) return InvalidError("an image of " + std::to_string(c) + "x" + std::to_string(h) +
                                                      "x" + std::to_string(w) + " cannot exist");
  Result<CudaThreadContext*> context = Context();
  if (!context.ok()) return context.status();
  Tensor image;
  image.c = c;
  image.h = h;
  image.w = w;
  Result<gpu::DeviceBlock> block = Scratch(static_cast<uint64_t>(c) * h * w * sizeof(float), **context);
  if (!block.ok()) return block.status();
  image.device = std::make_shared<CudaBuffer>(std::move(block).value());
  return image;
}

Result<Tensor> CudaBackend::UploadImage(const Tensor& host) const {
  if (host.on_device() || host.dims != 3 || host.n != 1 || host.layout != Layout::kPlain ||
      host.dtype != DataType::kF32) {
    return InvalidError("UploadImage takes a plain fp32 host image");
  }
  Result<Tensor> image = NewImage(host.c, host.h, host.w);
  if (!image.ok()) return image.status();
  // Once per image, from pageable memory: the runtime stages it and returns
  // once the host copy may go (a whole image in the pinned staging buffer
  // would keep that much page-locked memory for the thread's life).
  CudaThreadContext* context = *Context();
  Status s = CudaStatus(cudaMemcpyAsync(DevicePointer(*image), host.data.data(), host.data.size() * sizeof(float),
                                        cudaMemcpyHostToDevice, context->stream),
                        "uploading an image");
  if (!s.ok()) return s;
  return image;
}

Result<Tensor> CudaBackend::GatherTiles(const Tensor& image, const std::vector<TileCut>& cuts, int h, int w,
                                        bool reflect) const {
  if (!image.on_device() || image.layout != Layout::kPlain || cuts.empty() ||
      cuts.size() > static_cast<size_t>(kernels::kMaxTileBatch)) {
    return InvalidError("GatherTiles takes a device image and 1 to " + std::to_string(kernels::kMaxTileBatch) +
                        " tiles");
  }
  Result<Tensor> batch = NewTensor(3, static_cast<int>(cuts.size()), image.c, h, w);
  if (!batch.ok()) return batch.status();
  kernels::TileOrigins origins;
  origins.count = static_cast<int>(cuts.size());
  for (size_t k = 0; k < cuts.size(); ++k) {
    origins.x[k] = cuts[k].x;
    origins.y[k] = cuts[k].y;
  }
  CudaThreadContext* context = *Context();
  kernels::GatherTiles(static_cast<const float*>(DevicePointer(image)), image.h, image.w, origins, reflect,
                       DevicePointer(*batch), ShapeOf(*batch), batch->dtype, context->stream);
  Status s = LastLaunchStatus("cutting tiles");
  if (!s.ok()) return s;
  return batch;
}

Status CudaBackend::PlaceTiles(const Tensor& batch, const std::vector<TilePlacement>& placements, Tensor& image) const {
  if (!batch.on_device() || batch.layout != Layout::kChannelsLast || !image.on_device() ||
      image.layout != Layout::kPlain || batch.c != image.c || placements.size() != static_cast<size_t>(batch.n) ||
      placements.size() > static_cast<size_t>(kernels::kMaxTileBatch)) {
    return InvalidError("PlaceTiles takes a batch of this backend, a device image and one placement per tile");
  }
  kernels::TileRects rects;
  rects.count = static_cast<int>(placements.size());
  for (size_t k = 0; k < placements.size(); ++k) {
    const TilePlacement& p = placements[k];
    if (p.src_x < 0 || p.src_y < 0 || p.src_x + p.w > batch.w || p.src_y + p.h > batch.h || p.dst_x < 0 ||
        p.dst_y < 0 || p.dst_x + p.w > image.w || p.dst_y + p.h > image.h) {
      return InvalidError("a tile placement falls outside its tile or the image");
    }
    rects.src_x[k] = p.src_x;
    rects.src_y[k] = p.src_y;
    rects.dst_x[k] = p.dst_x;
    rects.dst_y[k] = p.dst_y;
    rects.w[k] = p.w;
    rects.h[k] = p.h;
  }
  Result<CudaThreadContext*> context = Context();
  if (!context.ok()) return context.status();
  kernels::PlaceTiles(DevicePointer(batch), ShapeOf(batch), batch.dtype, rects,
                      static_cast<float*>(DevicePointer(image)), image.h, image.w, (*context)->stream);
  return LastLaunchStatus("placing tiles");
}

Status CudaBackend::AddNearestInput(const Tensor& input, int scale, Tensor& output) const {
  if (!input.on_device() || !output.on_device() || input.layout != Layout::kPlain || output.layout != Layout::kPlain ||
      scale < 1 || output.c != input.c || output.h != input.h * scale || output.w != input.w * scale) {
    return InvalidError("AddNearestInput takes two device images, the output scale times the input");
  }
  Result<CudaThreadContext*> context = Context();
  if (!context.ok()) return context.status();
  kernels::AddNearest(static_cast<const float*>(DevicePointer(input)), input.c, input.h, input.w, scale,
                      static_cast<float*>(DevicePointer(output)), (*context)->stream);
  return LastLaunchStatus("adding the nearest-upscaled input");
}

Result<Tensor> CudaBackend::DownloadImage(const Tensor& image) const {
  if (!image.on_device() || image.layout != Layout::kPlain) return InvalidError("DownloadImage takes a device image");
  Result<CudaThreadContext*> context_or = Context();
  if (!context_or.ok()) return context_or.status();
  CudaThreadContext* context = *context_or;
  Tensor host;
  try {
    host = Tensor::Chw(image.c, image.h, image.w);
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kOutOfMemory, "host memory exhausted");
  }
  // Straight into the host tensor (pageable: see UploadImage).
  Status s = CudaStatus(cudaMemcpyAsync(host.data.data(), DevicePointer(image), host.data.size() * sizeof(float),
                                        cudaMemcpyDeviceToHost, context->stream),
                        "downloading an image");
  // Every kernel before it ends here: a fault in any of them surfaces now.
  if (s.ok()) s = CudaStatus(cudaStreamSynchronize(context->stream), "running the model on " + device().Name());
  if (!s.ok()) return s;
  return host;
}

}  // namespace tessera::engine::cuda
