#include "engine/backends/vulkan/vulkan_backend.h"

#include <algorithm>
#include <cstdio>

#include "engine/backends/vulkan/vulkan_memory.h"
#include "engine/gpu/held_memory.h"
#include "engine/ncnn/layer_table.h"

namespace tessera::engine::vulkan {
namespace {

std::string Hex(uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%04x", value);
  return text;
}

}  // namespace

BufferSpan VulkanBuffer::span() const {
  BufferSpan span = SpanOf(block_);
  span.bytes = bytes_;
  return span;
}

BufferSpan SpanOf(const gpu::DeviceBlock& block) {
  const auto* range = static_cast<const VulkanRange*>(block.data());
  return range != nullptr ? range->span : BufferSpan{};
}

BufferSpan SpanOf(const Tensor& t) {
  const auto* buffer = dynamic_cast<const VulkanBuffer*>(t.device.get());
  return buffer != nullptr ? buffer->span() : BufferSpan{};
}

// Bytes per value of a tensor of `dtype`.
uint64_t ElementBytes(DataType dtype) { return dtype == DataType::kF16 ? 2 : 4; }

uint64_t CountOf(const Tensor& t) {
  return static_cast<uint64_t>(t.n) * (t.dims == 3 ? static_cast<uint64_t>(t.c) * t.h * t.w : t.w);
}

Result<std::shared_ptr<VulkanBackend>> VulkanBackend::Create(int device_index, VulkanBackendOptions options) {
  Result<std::shared_ptr<VulkanDevice>> device = VulkanDevice::Open(device_index);
  if (!device.ok()) return device.status();
  if (options.dtype == DataType::kF16 && !(*device)->physical().storage_16bit) {
    return Status(StatusCode::kUnsupported, "vulkan:" + std::to_string(device_index) + " (" +
                                                (*device)->physical().name +
                                                ") has no 16-bit storage (storageBuffer16BitAccess): use fp32");
  }
  if (!options.pipeline_cache_dir.empty()) (*device)->UsePipelineCacheDir(options.pipeline_cache_dir);
  std::shared_ptr<VulkanBackend> backend(new VulkanBackend(std::move(device).value(), options));
  Result<gpu::DeviceBlock> unused = backend->allocator_->Allocate(256);
  if (!unused.ok()) return unused.status();
  backend->unused_ = std::move(unused).value();
  backend->tiling_ = MakeVulkanTiling(*backend);
  return backend;
}

VulkanBackend::VulkanBackend(std::shared_ptr<VulkanDevice> device, VulkanBackendOptions options)
    : device_(std::move(device)), options_(options) {
  gpu::CachingAllocatorOptions allocator_options;
  allocator_options.budget_bytes = options.vram_budget_bytes;
  allocator_options.idle_release = options.pool_idle_release;
  allocator_ = gpu::CachingAllocator::Create(std::make_shared<VulkanDeviceMemory>(device_), allocator_options);
  recordings_ = std::make_shared<RecordingRegistry>();
  gpu::RegisterHeldMemory(Device::Vulkan(device_->index()), allocator_);
}

std::string VulkanBackend::Fingerprint() const {
  const VulkanPhysicalDevice& d = device_->physical();
  return "device=" + d.name + " type=" + DeviceTypeName(d.type) + " vendor=" + Hex(d.vendor_id) +
         " id=" + Hex(d.device_id) + " driver=" + DriverVersionText(d) +
         " api=" + std::to_string(VK_API_VERSION_MAJOR(d.api_version)) + "." +
         std::to_string(VK_API_VERSION_MINOR(d.api_version)) +
         " precision=" + (options_.dtype == DataType::kF16 ? "fp16" : "fp32");
}

std::unique_ptr<Op> VulkanBackend::MakeOp(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights) {
  const ncnn::LayerInfo* info = ncnn::InfoOf(layer.kind);
  if (info == nullptr || info->graph_only) return nullptr;
  if (layer.kind == ncnn::LayerKind::kConvolution || layer.kind == ncnn::LayerKind::kDeconvolution) {
    return MakeConvolutionOp(*this, layer, weights);
  }
  return MakeLayerOp(*this, layer, weights);
}

BackendMemory VulkanBackend::ProbeMemory() const {
  BackendMemory memory;
  Result<gpu::DeviceMemoryInfo> info = allocator_->Probe();
  if (!info.ok()) return memory;
  memory.known = true;
  memory.free_bytes = std::min(info->free_bytes + recordings_->bytes(), info->total_bytes);
  memory.total_bytes = info->total_bytes;
  return memory;
}

Result<Tensor> VulkanBackend::NewTensor(int dims, int n, int c, int h, int w, DataType dtype) const {
  if ((dims != 1 && dims != 3) || n <= 0 || c <= 0 || h <= 0 || w <= 0) {
    return InvalidError("a tensor of " + std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(h) + "x" +
                        std::to_string(w) + " cannot exist");
  }
  Tensor t;
  t.dims = dims;
  t.n = n;
  t.c = dims == 3 ? c : 1;
  t.h = dims == 3 ? h : 1;
  t.w = w;
  t.layout = Layout::kPlain;
  t.dtype = dtype;
  const uint64_t bytes = CountOf(t) * ElementBytes(t.dtype);
  if (bytes > device_->max_storage_range()) {
    // One shader binding cannot cover it: smaller tiles would fit.
    return Status(StatusCode::kOutOfMemory, "a tensor of " + std::to_string(bytes) + " bytes passes " +
                                                device().Name() + "'s largest storage buffer range (" +
                                                std::to_string(device_->max_storage_range()) + ")");
  }
  Result<gpu::DeviceBlock> block = TensorMemory(bytes);
  if (!block.ok()) return block.status();
  t.device = std::make_shared<VulkanBuffer>(std::move(block).value(), bytes);
  return t;
}

Result<gpu::DeviceBlock> VulkanBackend::Upload(const std::vector<float>& values) const {
  const uint64_t bytes = std::max<uint64_t>(values.size(), 1) * sizeof(float);
  // The op's for as long as it lives, recording or not: never a recording's arena.
  Result<gpu::DeviceBlock> block = AllocateOrDropRecordings(*allocator_, *recordings_, bytes);
  if (!block.ok()) return block.status();
  Status s = device_->Upload(values.data(), values.size() * sizeof(float), SpanOf(*block));
  if (!s.ok()) return s;
  return block;
}

BufferSpan VulkanBackend::Unused() const {
  BufferSpan span = SpanOf(unused_);
  span.bytes = 256;
  return span;
}

Result<Tensor> VulkanBackend::Allocate(int dims, int c, int h, int w, Layout layout, DataType dtype) const {
  if (dims == 3 && layout != Layout::kPlain) {
    return Status(StatusCode::kUnsupported, "the Vulkan backend keeps feature maps plain (NCHW)");
  }
  if (dtype != options_.dtype) {
    return Status(StatusCode::kUnsupported, std::string("this Vulkan backend stores ") +
                                                (options_.dtype == DataType::kF16 ? "fp16" : "fp32") + " only");
  }
  return NewTensor(dims, 1, c, h, w);
}

void VulkanBackend::ReleaseCachedMemory() const {
  recordings_->DropAll();
  allocator_->ReleaseCached();
}

Result<Tensor> VulkanBackend::FromHost(Tensor host) const {
  if (host.on_device() || host.layout != Layout::kPlain || host.dtype != DataType::kF32) {
    return InvalidError("FromHost takes a plain fp32 host tensor");
  }
  Result<Tensor> out = NewTensor(host.dims, host.n, host.c, host.h, host.w);
  if (!out.ok()) return out.status();
  if (host.data.size() != CountOf(*out)) return InvalidError("host tensor size does not match its shape");
  if (out->dtype == DataType::kF16) {
    std::vector<_Float16> half;
    try {
      half.assign(host.data.begin(), host.data.end());  // each value rounded to nearest even
    } catch (const std::bad_alloc&) {
      return Status(StatusCode::kOutOfMemory, "host memory exhausted");
    }
    Status s = device_->Upload(half.data(), half.size() * sizeof(_Float16), SpanOf(*out));
    if (!s.ok()) return s;
    return out;
  }
  Status s = device_->Upload(host.data.data(), host.data.size() * sizeof(float), SpanOf(*out));
  if (!s.ok()) return s;
  return out;
}

Result<Tensor> VulkanBackend::ToHost(const Tensor& t) const {
  const BufferSpan span = SpanOf(t);
  if (span.buffer == VK_NULL_HANDLE) return InvalidError("ToHost takes a tensor of the Vulkan backend");
  Tensor host;
  host.dims = t.dims;
  host.n = t.n;
  host.c = t.c;
  host.h = t.h;
  host.w = t.w;
  std::vector<_Float16> half;
  try {
    host.data.resize(CountOf(t));
    if (t.dtype == DataType::kF16) half.resize(CountOf(t));
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kOutOfMemory, "host memory exhausted");
  }
  if (t.dtype == DataType::kF16) {
    Status s = device_->Download(span, half.data(), half.size() * sizeof(_Float16));
    if (!s.ok()) return s;
    std::copy(half.begin(), half.end(), host.data.begin());  // exact: every fp16 value is an fp32 one
    return host;
  }
  Status s = device_->Download(span, host.data.data(), host.data.size() * sizeof(float));
  if (!s.ok()) return s;
  return host;
}

Result<Tensor> VulkanBackend::Convert(const Tensor& t, Layout layout) const {
  if (SpanOf(t).buffer == VK_NULL_HANDLE) return InvalidError("Convert takes a tensor of the Vulkan backend");
  if (layout == Layout::kPlain || t.dims == 1) {
    Tensor same = t;  // the same memory: a vector reads the same in every layout
    same.layout = layout;
    return same;
  }
  return Status(StatusCode::kUnsupported, "the Vulkan backend keeps feature maps plain (NCHW)");
}

}  // namespace tessera::engine::vulkan
