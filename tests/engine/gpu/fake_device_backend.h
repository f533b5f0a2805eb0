// A test double of a GPU backend: the reference kernels compute on the host,
// but every tensor also holds a block of a fake device's memory through the
// real caching allocator, the backend reports that memory to the planner, and
// HostMemory() is false — so the executor transfers, the planner sizes chunks
// from "free VRAM" and an exhausted device is the typed out-of-memory, as on a
// GPU, on machines without one.
#pragma once

#include <memory>

#include "engine/backend.h"
#include "engine/backends/reference_backend.h"
#include "engine/gpu/caching_allocator.h"

namespace tessera::engine::gpu {

class FakeDeviceBuffer : public DeviceBuffer {
 public:
  explicit FakeDeviceBuffer(DeviceBlock block) : block_(std::move(block)) {}
  size_t bytes() const override { return block_.bytes(); }

 private:
  DeviceBlock block_;
};

class FakeDeviceBackend : public Backend {
 public:
  explicit FakeDeviceBackend(std::shared_ptr<CachingAllocator> allocator) : allocator_(std::move(allocator)) {}

  std::string name() const override { return "fake-gpu"; }
  Device device() const override { return Device::Cuda(0); }
  std::string Fingerprint() const override { return "fake-gpu"; }

  std::unique_ptr<Op> MakeOp(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights) override {
    std::unique_ptr<Op> inner = host_.MakeOp(layer, weights);
    if (!inner) return nullptr;
    return std::make_unique<FakeOp>(std::move(inner), *this);
  }

  BackendMemory ProbeMemory() const override {
    BackendMemory memory;
    Result<DeviceMemoryInfo> info = allocator_->Probe();
    if (!info.ok()) return memory;
    memory.known = true;
    memory.free_bytes = info->free_bytes;
    memory.total_bytes = info->total_bytes;
    return memory;
  }
  Result<Tensor> Allocate(int dims, int c, int h, int w, Layout layout, DataType dtype) const override {
    Result<Tensor> t = host_.Allocate(dims, c, h, w, layout, dtype);
    if (!t.ok()) return t;
    return OnDevice(std::move(t).value());
  }
  void ReleaseCachedMemory() const override { allocator_->ReleaseCached(); }

  bool HostMemory() const override { return false; }
  Result<Tensor> FromHost(Tensor host) const override { return OnDevice(std::move(host)); }
  Result<Tensor> ToHost(const Tensor& t) const override {
    Tensor host = t;
    host.device.reset();
    return host;
  }
  Result<Tensor> Convert(const Tensor& t, Layout layout) const override {
    if (layout != Layout::kPlain) return Status(StatusCode::kUnsupported, "the fake device keeps plain tensors");
    return t;
  }

  // The tensor's values stay on the host; its "device copy" is charged to the fake device.
  Result<Tensor> OnDevice(Tensor t) const {
    Result<DeviceBlock> block = allocator_->Allocate(t.data.size() * sizeof(float));
    if (!block.ok()) return block.status();
    t.device = std::make_shared<FakeDeviceBuffer>(std::move(block).value());
    return t;
  }

 private:
  class FakeOp : public Op {
   public:
    FakeOp(std::unique_ptr<Op> inner, const FakeDeviceBackend& backend) : inner_(std::move(inner)), backend_(backend) {}
    Result<Tensor> Run(const OpInputs& run) const override {
      Result<Tensor> out = inner_->Run(run);
      if (!out.ok()) return out;
      return backend_.OnDevice(std::move(out).value());
    }

   private:
    std::unique_ptr<Op> inner_;
    const FakeDeviceBackend& backend_;
  };

  ReferenceBackend host_;
  std::shared_ptr<CachingAllocator> allocator_;
};

}  // namespace tessera::engine::gpu
