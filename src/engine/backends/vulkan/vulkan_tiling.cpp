// Tiles cut and placed in the Vulkan device's memory (engine/device_tiling.h):
// the image goes up once and comes back once; each tile's padded input is cut
// by gather_tile.comp (reflect or replicate at the edges, as the host path
// pads), each output's kept rectangle written into the output image by
// copy_box.comp, and Real-CUGAN x4's nearest residual added by
// add_nearest.comp. The images are fp32 whatever the backend's precision; the
// tiles are in the backend's dtype, as FromHost makes them: on an fp16 backend
// gather_tile.comp rounds each value to nearest even by hand (a shader's own
// conversion rounds as the driver pleases), and place_tile.comp widens the
// outputs back (exact). Everything else is a copy or one fp32 addition, so
// the bytes are the host path's in either precision.
#include <array>
#include <vector>

#include "engine/backends/vulkan/vulkan_backend.h"
#include "engine/backends/vulkan/vulkan_kernels.h"

namespace tessera::engine::vulkan {
namespace {

// Tiles per batch: one dispatch each for cutting and placing, all in one
// submission. Bounds a batch's memory too (the planner's chunk is the rest).
constexpr int kMaxTileBatch = 32;

bool IsImage(const Tensor& t) {
  return SpanOf(t).buffer != VK_NULL_HANDLE && t.dims == 3 && t.n == 1 && t.dtype == DataType::kF32 &&
         t.layout == Layout::kPlain;
}

// Shaders between fp32 images (add_nearest.comp) run their fp32 variant.
ShaderRef Fp32(ShaderId shader) { return {shader, false}; }

class VulkanTiling final : public DeviceTiling {
 public:
  explicit VulkanTiling(const VulkanBackend& backend) : backend_(backend) {}

  int MaxBatch() const override { return kMaxTileBatch; }

  Result<Tensor> UploadImage(const Tensor& host) const override {
    if (host.on_device() || host.dims != 3 || host.n != 1 || host.layout != Layout::kPlain ||
        host.dtype != DataType::kF32 || host.data.size() != static_cast<size_t>(host.c) * host.h * host.w) {
      return InvalidError("UploadImage takes a plain fp32 host image");
    }
    Result<Tensor> image = NewImage(host.c, host.h, host.w);
    if (!image.ok()) return image.status();
    // Straight from the caller's values (FromHost would take a copy of the image first).
    Status s = backend_.gpu().Upload(host.data.data(), host.data.size() * sizeof(float), SpanOf(*image));
    if (!s.ok()) return s;
    return image;
  }

  Result<Tensor> NewImage(int c, int h, int w) const override {
    return backend_.NewTensor(3, 1, c, h, w, DataType::kF32);
  }

  Result<Tensor> GatherTiles(const Tensor& image, const std::vector<TileCut>& cuts, int h, int w,
                             bool reflect) const override {
    if (!IsImage(image) || cuts.empty() || cuts.size() > static_cast<size_t>(kMaxTileBatch) || h <= 0 || w <= 0) {
      return InvalidError("GatherTiles takes a device image and 1 to " + std::to_string(kMaxTileBatch) + " tiles");
    }
    Result<Tensor> batch = backend_.NewTensor(3, static_cast<int>(cuts.size()), image.c, h, w);
    if (!batch.ok()) return batch.status();
    GatherTilePush push;
    push.total = static_cast<uint32_t>(static_cast<uint64_t>(image.c) * h * w);
    push.c = image.c, push.image_h = image.h, push.image_w = image.w, push.h = h, push.w = w;
    push.reflect = reflect ? 1 : 0;
    const std::array<BufferSpan, 2> buffers{SpanOf(image), SpanOf(*batch)};
    Status s = backend_.gpu().Run([&](CommandRecorder& r) {
      for (size_t k = 0; k < cuts.size(); ++k) {
        push.x0 = cuts[k].x, push.y0 = cuts[k].y, push.item = static_cast<int32_t>(k);
        Status d = r.Dispatch(backend_.Shader(ShaderId::kGatherTile), buffers, &push, sizeof(push), push.total);
        if (!d.ok()) return d;
      }
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return batch;
  }

  Status PlaceTiles(const Tensor& batch, const std::vector<TilePlacement>& placements, Tensor& image) const override {
    if (SpanOf(batch).buffer == VK_NULL_HANDLE || batch.dims != 3 || batch.dtype != backend_.dtype() || !IsImage(image) ||
        batch.c != image.c ||
        placements.size() != static_cast<size_t>(batch.n)) {
      return InvalidError("PlaceTiles takes a batch of this backend, a device image and one placement per tile");
    }
    for (const TilePlacement& p : placements) {
      if (p.w <= 0 || p.h <= 0 || p.src_x < 0 || p.src_y < 0 || p.src_x + p.w > batch.w ||
          p.src_y + p.h > batch.h || p.dst_x < 0 || p.dst_y < 0 || p.dst_x + p.w > image.w ||
          p.dst_y + p.h > image.h) {
        return InvalidError("a tile placement falls outside its tile or the image");
      }
    }
    const std::array<BufferSpan, 2> buffers{SpanOf(batch), SpanOf(image)};
    Status s = backend_.gpu().Run([&](CommandRecorder& r) {
      for (size_t k = 0; k < placements.size(); ++k) {
        const TilePlacement& p = placements[k];
        // Item k's channels are channels k*c .. k*c+c-1 of the batch read as one map.
        CopyBoxPush push;
        push.total = static_cast<uint32_t>(static_cast<uint64_t>(batch.c) * p.h * p.w);
        push.box_c = batch.c, push.box_h = p.h, push.box_w = p.w;
        push.src_c = batch.n * batch.c, push.src_h = batch.h, push.src_w = batch.w;
        push.src_c0 = static_cast<int32_t>(k) * batch.c, push.src_y0 = p.src_y, push.src_x0 = p.src_x;
        push.dst_c = image.c, push.dst_h = image.h, push.dst_w = image.w;
        push.dst_y0 = p.dst_y, push.dst_x0 = p.dst_x;
        Status d = r.Dispatch(backend_.Shader(ShaderId::kPlaceTile), buffers, &push, sizeof(push), push.total);
        if (!d.ok()) return d;
      }
      return Status::Ok();
    });
    // A batch of tiles is whole: the device starts on it while the host
    // records the next (vulkan_device.h: batches in flight).
    return s.ok() ? backend_.gpu().Submit() : s;
  }

  Status AddNearestInput(const Tensor& input, int scale, Tensor& output) const override {
    if (!IsImage(input) || !IsImage(output) || scale < 1 || output.c != input.c || output.h != input.h * scale ||
        output.w != input.w * scale) {
      return InvalidError("AddNearestInput takes two device images, the output scale times the input");
    }
    AddNearestPush push;
    push.total = static_cast<uint32_t>(CountOf(output));
    push.in_h = input.h, push.in_w = input.w, push.scale = scale;
    const std::array<BufferSpan, 2> buffers{SpanOf(input), SpanOf(output)};
    return backend_.gpu().Run(
        [&](CommandRecorder& r) { return r.Dispatch(Fp32(ShaderId::kAddNearest), buffers, &push, sizeof(push), push.total); });
  }

  Result<Tensor> DownloadImage(const Tensor& image) const override {
    if (!IsImage(image)) return InvalidError("DownloadImage takes a device image");
    return backend_.ToHost(image);
  }

 private:
  const VulkanBackend& backend_;
};

}  // namespace

std::unique_ptr<DeviceTiling> MakeVulkanTiling(const VulkanBackend& backend) {
  return std::make_unique<VulkanTiling>(backend);
}

}  // namespace tessera::engine::vulkan
