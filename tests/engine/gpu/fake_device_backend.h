// A test double of a GPU backend: the reference kernels compute on the host,
// but every tensor also holds a block of a fake device's memory through the
// real caching allocator, the backend reports that memory to the planner, and
// HostMemory() is false — so the executor transfers, the planner sizes chunks
// from "free VRAM" and an exhausted device is the typed out-of-memory, as on a
// GPU, on machines without one.
//
// With `max_batch` > 0 it also cuts and places tiles itself (DeviceTiling), in
// batches: its ops run a batch item by item through the reference kernels,
// which is what a batched device kernel must compute.
#pragma once

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

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

class FakeDeviceBackend : public Backend, public DeviceTiling {
 public:
  explicit FakeDeviceBackend(std::shared_ptr<CachingAllocator> allocator, int max_batch = 0)
      : allocator_(std::move(allocator)), max_batch_(max_batch) {}

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

  const DeviceTiling* tiling() const override { return max_batch_ > 0 ? this : nullptr; }
  int MaxBatch() const override { return max_batch_; }
  Result<Tensor> UploadImage(const Tensor& host) const override { return OnDevice(host); }
  Result<Tensor> NewImage(int c, int h, int w) const override { return OnDevice(Tensor::Chw(c, h, w)); }
  Result<Tensor> GatherTiles(const Tensor& image, const std::vector<TileCut>& cuts, int h, int w,
                             bool reflect) const override {
    auto mirror = [reflect](int i, int n) {
      if (!reflect) return std::min(std::max(i, 0), n - 1);
      if (n == 1) return 0;
      const int period = 2 * (n - 1);
      i %= period;
      if (i < 0) i += period;
      return i < n ? i : period - i;
    };
    std::vector<Tensor> items;
    for (const TileCut& cut : cuts) {
      Tensor tile = Tensor::Chw(image.c, h, w);
      for (int q = 0; q < image.c; ++q) {
        for (int y = 0; y < h; ++y) {
          for (int x = 0; x < w; ++x) {
            tile.at(q, y, x) = image.at(q, mirror(cut.y + y, image.h), mirror(cut.x + x, image.w));
          }
        }
      }
      items.push_back(std::move(tile));
    }
    ++batches_gathered_;
    return OnDevice(Stack(items));
  }
  Status PlaceTiles(const Tensor& batch, const std::vector<TilePlacement>& placements, Tensor& image) const override {
    for (size_t k = 0; k < placements.size(); ++k) {
      const Tensor item = Item(batch, static_cast<int>(k));
      const TilePlacement& p = placements[k];
      for (int q = 0; q < image.c; ++q) {
        for (int y = 0; y < p.h; ++y) {
          for (int x = 0; x < p.w; ++x) image.at(q, p.dst_y + y, p.dst_x + x) = item.at(q, p.src_y + y, p.src_x + x);
        }
      }
    }
    return Status::Ok();
  }
  Status AddNearestInput(const Tensor& input, int scale, Tensor& output) const override {
    for (int q = 0; q < output.c; ++q) {
      for (int y = 0; y < output.h; ++y) {
        for (int x = 0; x < output.w; ++x) output.at(q, y, x) += input.at(q, y / scale, x / scale);
      }
    }
    ++nearest_added_;
    return Status::Ok();
  }
  int nearest_added() const { return nearest_added_; }
  Result<Tensor> DownloadImage(const Tensor& image) const override { return ToHost(image); }
  int batches_gathered() const { return batches_gathered_; }

  // Batch item k of a host tensor (n x c x h x w, or n x w for a vector).
  static Tensor Item(const Tensor& batch, int k) {
    Tensor item = batch;
    item.device.reset();
    item.n = 1;
    const size_t size = batch.data.size() / static_cast<size_t>(batch.n);
    item.data.assign(batch.data.begin() + static_cast<std::ptrdiff_t>(size * k),
                     batch.data.begin() + static_cast<std::ptrdiff_t>(size * (k + 1)));
    return item;
  }
  static Tensor Stack(const std::vector<Tensor>& items) {
    Tensor batch = items.front();
    batch.n = static_cast<int>(items.size());
    batch.data.clear();
    for (const Tensor& item : items) batch.data.insert(batch.data.end(), item.data.begin(), item.data.end());
    return batch;
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
    // Stands in for a device's per-layer choice (a cuDNN algorithm): made on
    // the first run, or given back.
    std::string SavedChoice() const override {
      std::lock_guard lock(mutex_);
      return choice_;
    }
    void RestoreChoice(const std::string& saved) override {
      std::lock_guard lock(mutex_);
      if (saved.rfind("fake-choice ", 0) == 0) choice_ = saved;
    }

    Result<Tensor> Run(const OpInputs& run) const override {
      {
        std::lock_guard lock(mutex_);
        if (choice_.empty()) choice_ = "fake-choice " + std::to_string(run.tensors.empty() ? 0 : run.tensors.front()->c);
      }
      const int n = run.tensors.empty() ? 1 : run.tensors.front()->n;
      if (n == 1) {
        Result<Tensor> out = inner_->Run(run);
        if (!out.ok()) return out;
        return backend_.OnDevice(std::move(out).value());
      }
      // A batch: item by item, each exactly as alone.
      std::vector<Tensor> outputs;
      for (int k = 0; k < n; ++k) {
        std::vector<Tensor> inputs;
        for (const Tensor* t : run.tensors) inputs.push_back(Item(*t, k));
        OpInputs item;
        item.output_readers = run.output_readers;
        for (const Tensor& t : inputs) {
          item.tensors.push_back(&t);
          item.writable.push_back(nullptr);
        }
        Result<Tensor> out = inner_->Run(item);
        if (!out.ok()) return out;
        outputs.push_back(std::move(out).value());
      }
      return backend_.OnDevice(Stack(outputs));
    }

   private:
    std::unique_ptr<Op> inner_;
    const FakeDeviceBackend& backend_;
    mutable std::mutex mutex_;
    mutable std::string choice_;
  };

  ReferenceBackend host_;
  std::shared_ptr<CachingAllocator> allocator_;
  int max_batch_ = 0;
  mutable std::atomic<int> batches_gathered_{0};
  mutable std::atomic<int> nearest_added_{0};
};

}  // namespace tessera::engine::gpu
