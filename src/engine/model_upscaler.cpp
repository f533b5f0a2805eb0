#include "engine/model_upscaler.h"

#include <algorithm>
#include <cmath>
#include <new>
#include <optional>
#include <map>
#include <thread>

#include "engine/backends/reference_backend.h"
#include "engine/buffer_pool.h"
#include "engine/ops/reference_ops.h"
#include "util/failpoint.h"
#include "imaging/pixel_buffer.h"

namespace tessera::engine {
namespace {

// Index into [0, n) for a position that may lie outside it.
int ReflectIndex(int i, int n) {  // mirror without repeating the edge: ..2 1 | 0 1 2 .. n-1 | n-2 ..
  if (n == 1) return 0;
  const int period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}
int ReplicateIndex(int i, int n) { return std::min(std::max(i, 0), n - 1); }

// Rounds a float output the way the reference programs do: v*255, +0.5, floor,
// clamped to [0, 255] before the conversion to an integer.
[[maybe_unused]] uint8_t ToByte(float v) {  // unused in the core-only build
  float x = std::floor(v * 255.f + 0.5f);
  x = std::min(std::max(x, 0.f), 255.f);
  return static_cast<uint8_t>(x);
}

}  // namespace

TileGeometry GeometryFor(const ModelEntry& entry) {
  TileGeometry g;
  switch (entry.family) {
    case ModelFamily::kRealEsrgan:
      g.prepadding = 10;
      break;
    case ModelFamily::kRealCugan:
      g.prepadding = entry.scale == 2 ? 18 : entry.scale == 3 ? 14 : 19;
      g.align = entry.scale == 3 ? 4 : 2;
      g.model_crops = true;
      g.adds_nearest_input = entry.scale == 4;
      break;
    case ModelFamily::kWaifu2xCunet:
      g.prepadding = entry.scale == 1 ? 28 : 18;
      g.align = entry.scale == 1 ? 4 : 2;
      g.reflect = false;
      g.model_crops = true;
      break;
  }
  return g;
}

namespace {

// The CPU's backends when the caller named none (always available: the
// reference kernels at worst).
BackendSet OrCpuBackends(BackendSet backends) {
  if (backends.backend) return backends;
#ifdef TESSERA_ENGINE_CORE_ONLY
  return BackendSet{std::make_shared<ReferenceBackend>(), nullptr};
#else
  Result<BackendSet> cpu = BackendsFor(Device::Cpu());
  return cpu.ok() ? std::move(cpu).value() : BackendSet{std::make_shared<ReferenceBackend>(), nullptr};
#endif
}

}  // namespace

ModelUpscaler::ModelUpscaler(ModelEntry entry, std::unique_ptr<ncnn::Model> model, int tile_size, BackendSet backends)
    : entry_(std::move(entry)),
      model_(std::move(model)),
      backends_(OrCpuBackends(std::move(backends))),
      executor_(*model_, *backends_.backend, backends_.fallback.get()),
      geometry_(GeometryFor(entry_)),
      tile_size_(tile_size) {}

Result<std::unique_ptr<ModelUpscaler>> ModelUpscaler::Load(const std::string& model_dir, const ModelEntry& entry,
                                                           int tile_size, BackendSet backends) {
  Result<ncnn::Model> model = ncnn::LoadModel(model_dir, entry.name);
  if (!model.ok()) return model.status();
  return FromModel(entry, std::move(model).value(), tile_size, std::move(backends));
}

std::unique_ptr<ModelUpscaler> ModelUpscaler::FromModel(const ModelEntry& entry, ncnn::Model model, int tile_size,
                                                        BackendSet backends) {
  auto owned = std::make_unique<ncnn::Model>(std::move(model));
  return std::unique_ptr<ModelUpscaler>(
      new ModelUpscaler(entry, std::move(owned), ResolvedTileSize(tile_size), std::move(backends)));
}

Status ModelUpscaler::WarmUp() const {
  const int edge = backends_.backend->PreparesPerShape() ? tile_size_ : std::min(tile_size_, kWarmUpEdge);
  const Tensor rgb = Tensor::Chw(3, edge, edge, 0.5f);
  const std::vector<TileRect> tiles = TileGrid(edge, edge);
  return RunTile(rgb, tiles.front(), Deadline(), nullptr).status();
}

uint64_t ModelUpscaler::WeightBytes() const {
  uint64_t floats = 0;
  for (const ncnn::LayerWeights& w : model_->weights) floats += w.weight.size() + w.bias.size();
  return floats * sizeof(float);
}

std::string ModelUpscaler::Describe() const {
  return entry_.name + " x" + std::to_string(entry_.scale) + " tile " + std::to_string(tile_size_) + " on " +
         executor_.Describe();
}

Size ModelUpscaler::OutputSize(Size input) const {
  return {input.width * static_cast<uint64_t>(entry_.scale), input.height * static_cast<uint64_t>(entry_.scale)};
}

uint64_t ModelUpscaler::WorkingBytes(Size input) const {
  const uint64_t s = static_cast<uint64_t>(entry_.scale);
  const uint64_t padded = static_cast<uint64_t>(tile_size_ + 2 * geometry_.prepadding + geometry_.align);
  // Planar float copies of the image in and out, and up to three live 64-channel
  // feature maps at output resolution for one tile.
  const uint64_t planes = (input.pixels() + OutputSize(input).pixels()) * 4 * 4;
  return planes + padded * padded * s * s * 64 * 4 * 3;
}

void ModelUpscaler::SetMemoryPlan(MemoryPlanOptions options, std::shared_ptr<MemoryBudget> budget) {
  plan_options_ = std::move(options);
  budget_ = std::move(budget);
}

std::vector<ModelUpscaler::TileRect> ModelUpscaler::TileGrid(int width, int height) const {
  std::vector<TileRect> tiles;
  for (int ty = 0; ty < height; ty += tile_size_) {
    for (int tx = 0; tx < width; tx += tile_size_) {
      TileRect t;
      t.x = tx;
      t.y = ty;
      t.w = std::min(tile_size_, width - tx);
      t.h = std::min(tile_size_, height - ty);
      t.ext_w = (geometry_.align - t.w % geometry_.align) % geometry_.align;
      t.ext_h = (geometry_.align - t.h % geometry_.align) % geometry_.align;
      tiles.push_back(t);
    }
  }
  return tiles;
}

Result<Tensor> ModelUpscaler::RunTile(const Tensor& rgb, const TileRect& t, const Deadline& deadline,
                                      RunStats* stats) const {
  const int s = entry_.scale;
  const int pad = geometry_.prepadding;
  const int W = rgb.w, H = rgb.h;
  const int in_w = t.w + t.ext_w + 2 * pad;
  const int in_h = t.h + t.ext_h + 2 * pad;
  Tensor tile = Tensor::Chw(rgb.c, in_h, in_w);
  for (int q = 0; q < rgb.c; ++q) {
    for (int y = 0; y < in_h; ++y) {
      const int sy = t.y - pad + y;
      const int iy = geometry_.reflect ? ReflectIndex(sy, H) : ReplicateIndex(sy, H);
      for (int x = 0; x < in_w; ++x) {
        const int sx = t.x - pad + x;
        tile.at(q, y, x) = rgb.at(q, iy, geometry_.reflect ? ReflectIndex(sx, W) : ReplicateIndex(sx, W));
      }
    }
  }
  Result<Tensor> result = executor_.Run(std::move(tile), deadline, stats);
  if (!result.ok()) return result.status();
  const Tensor& o = *result;
  const int offset = geometry_.model_crops ? 0 : pad * s;
  const int expect_w = geometry_.model_crops ? (t.w + t.ext_w) * s : in_w * s;
  const int expect_h = geometry_.model_crops ? (t.h + t.ext_h) * s : in_h * s;
  if (o.c != rgb.c || o.w != expect_w || o.h != expect_h) {
    return InternalError(entry_.name + ": tile output is " + std::to_string(o.w) + "x" + std::to_string(o.h) +
                         ", expected " + std::to_string(expect_w) + "x" + std::to_string(expect_h));
  }
  // Only the tile's own pixels are kept: the chunk holds these until it is done.
  Tensor cropped = Tensor::Chw(rgb.c, t.h * s, t.w * s);
  for (int q = 0; q < rgb.c; ++q) {
    for (int y = 0; y < t.h * s; ++y) {
      const float* src = o.channel(q) + static_cast<size_t>(y + offset) * o.w + offset;
      std::copy(src, src + t.w * s, cropped.channel(q) + static_cast<size_t>(y) * cropped.w);
    }
  }
  return cropped;
}

Result<std::vector<Tensor>> ModelUpscaler::RunChunk(const Tensor& rgb, const std::vector<TileRect>& tiles,
                                                     size_t first, size_t count, uint64_t tile_cost,
                                                     const Deadline& deadline, RunStats* stats) const {
  Result<MemoryBudget::Reservation> reservation = ReserveChunk(tile_cost, count);
  if (!reservation.ok()) return reservation.status();
  // On a device backend, two threads take alternate tiles: each thread has its
  // own stream, so one tile's upload and download overlap the other's layers.
  // Each tile is computed exactly as alone; only the timing changes.
  const size_t lanes = !backends_.backend->HostMemory() && stats == nullptr && count > 1 ? 2 : 1;
  std::vector<Tensor> outputs(count);
  std::vector<Status> statuses(count, InternalError("tile not run"));
  auto run_lane = [&](size_t lane) {
    for (size_t k = lane; k < count; k += lanes) {
      try {
        // Tests: an allocation failure at this point (src/util/failpoint.h).
        if (FailpointHit("engine.tile_alloc")) throw std::bad_alloc();
        Result<Tensor> out = RunTile(rgb, tiles[first + k], deadline, stats);
        statuses[k] = out.status();
        if (out.ok()) outputs[k] = std::move(out).value();
      } catch (const std::bad_alloc&) {
        statuses[k] = Status(StatusCode::kOutOfMemory, entry_.name + ": out of memory running a chunk of " +
                                                           std::to_string(count) + " tiles");
      }
      if (!statuses[k].ok()) return;  // a lane stops at its first failure
    }
  };
  if (lanes == 1) {
    run_lane(0);
  } else {
    std::thread second([&] { run_lane(1); });
    run_lane(0);
    second.join();
  }
  // The first failure in tile order (a lane's unrun tiles come after its own failure).
  for (const Status& s : statuses) {
    if (!s.ok()) return s;
  }
  return outputs;
}

Result<MemoryBudget::Reservation> ModelUpscaler::ReserveChunk(uint64_t tile_cost, size_t count) const {
  // Every allocation of the chunk is promised against the process's budget
  // first; the real allocator can still say no (std::bad_alloc).
  if (!budget_ || tile_cost == 0) return MemoryBudget::Reservation();
  return budget_->Reserve(tile_cost * count);
}

Result<std::optional<ModelUpscaler::DeviceImages>> ModelUpscaler::UploadForDeviceTiles(const Tensor& rgb) const {
  const DeviceTiling* tiling = backends_.backend->tiling();
  if (tiling == nullptr || !executor_.RunsWhollyOnBackend()) return std::optional<DeviceImages>();
  Result<Tensor> input = tiling->UploadImage(rgb);
  Result<Tensor> output = input.ok() ? tiling->NewImage(rgb.c, rgb.h * entry_.scale, rgb.w * entry_.scale)
                                     : input.status();
  if (output.ok()) return std::optional<DeviceImages>(DeviceImages{tiling, std::move(*input), std::move(*output)});
  // No room for the whole images: the host path needs only a tile's.
  if (output.status().code() == StatusCode::kOutOfMemory) {
    backends_.backend->ReleaseCachedMemory();
    return std::optional<DeviceImages>();
  }
  return output.status();
}

Result<size_t> ModelUpscaler::RunChunkOnDevice(DeviceImages& images, const std::vector<TileRect>& tiles, size_t first,
                                               size_t count, uint64_t tile_cost, const Deadline& deadline,
                                               RunStats* stats) const {
  Result<MemoryBudget::Reservation> reservation = ReserveChunk(tile_cost, count);
  if (!reservation.ok()) return reservation.status();
  const int s = entry_.scale;
  const int pad = geometry_.prepadding;
  const int offset = geometry_.model_crops ? 0 : pad * s;
  const size_t max_batch = static_cast<size_t>(std::max(1, images.tiling->MaxBatch()));
  // The chunk's tiles by padded size (the grid's last column and row differ),
  // each group in batches of at most max_batch: the order tiles run in never
  // changes what they compute.
  std::map<std::pair<int, int>, std::vector<size_t>> by_size;
  for (size_t k = first; k < first + count; ++k) {
    const TileRect& t = tiles[k];
    by_size[{t.w + t.ext_w + 2 * pad, t.h + t.ext_h + 2 * pad}].push_back(k);
  }
  size_t largest = 0;
  try {
    for (const auto& [size, members] : by_size) {
      const auto [in_w, in_h] = size;
      for (size_t begin = 0; begin < members.size(); begin += max_batch) {
        // Tests: an allocation failure at this point (src/util/failpoint.h).
        if (FailpointHit("engine.tile_alloc")) throw std::bad_alloc();
        std::vector<TileCut> cuts;
        std::vector<TilePlacement> placements;
        for (size_t m = begin; m < std::min(members.size(), begin + max_batch); ++m) {
          const TileRect& t = tiles[members[m]];
          cuts.push_back({t.x - pad, t.y - pad});
          placements.push_back({offset, offset, t.x * s, t.y * s, t.w * s, t.h * s});
        }
        Result<Tensor> batch = images.tiling->GatherTiles(images.input, cuts, in_h, in_w, geometry_.reflect);
        if (!batch.ok()) return batch.status();
        Result<Tensor> result = executor_.RunOnBackend(std::move(batch).value(), deadline, stats);
        if (!result.ok()) return result.status();
        const TileRect& t = tiles[members[begin]];
        const int expect_w = geometry_.model_crops ? (t.w + t.ext_w) * s : in_w * s;
        const int expect_h = geometry_.model_crops ? (t.h + t.ext_h) * s : in_h * s;
        if (result->n != static_cast<int>(cuts.size()) || result->c != images.input.c || result->w != expect_w ||
            result->h != expect_h) {
          return InternalError(entry_.name + ": a batch of " + std::to_string(cuts.size()) + " tiles gave " +
                               std::to_string(result->n) + " outputs of " + std::to_string(result->w) + "x" +
                               std::to_string(result->h) + ", expected " + std::to_string(expect_w) + "x" +
                               std::to_string(expect_h));
        }
        Status placed = images.tiling->PlaceTiles(*result, placements, images.output);
        if (!placed.ok()) return placed;
        largest = std::max(largest, cuts.size());
      }
    }
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kOutOfMemory,
                  entry_.name + ": out of memory running a chunk of " + std::to_string(count) + " tiles");
  }
  return largest;
}

uint64_t ModelUpscaler::KnownTileCost(int width, int height) const {
  std::lock_guard lock(cost_mutex_);
  auto it = tile_costs_.find({width, height});
  return it == tile_costs_.end() ? 0 : it->second;
}

Result<Tensor> ModelUpscaler::RunPlanar(const Tensor& rgb, const Deadline& deadline, const ProgressFn& progress,
                                        TilingReport* report) const {
  const int s = entry_.scale;
  const std::vector<TileRect> tiles = TileGrid(rgb.w, rgb.h);
  const size_t total = tiles.size();
  Result<std::optional<DeviceImages>> device_images = UploadForDeviceTiles(rgb);
  if (!device_images.ok()) return device_images.status();
  std::optional<DeviceImages>& device = *device_images;
  Tensor out = device ? Tensor() : Tensor::Chw(rgb.c, rgb.h * s, rgb.w * s);
  TilingReport done_report;
  done_report.tiles_on_device = device.has_value();
  if (report != nullptr) *report = TilingReport();
  // The first tile is the grid's largest: what it costs bounds every tile's cost.
  const TileRect& largest = tiles.front();
  uint64_t tile_cost = KnownTileCost(largest.w + largest.ext_w, largest.h + largest.ext_h);
  std::optional<ChunkPlanner> planner;
  if (tile_cost > 0) planner.emplace(plan_options_, tile_cost);

  size_t next = 0;
  while (next < total) {
    // Without a known cost the first chunk is one tile, measured on the way.
    const size_t count = planner ? planner->NextChunk(total - next) : 1;
    RunStats stats;
    RunStats* measure = tile_cost == 0 ? &stats : nullptr;
    Result<std::vector<Tensor>> chunk = std::vector<Tensor>();
    if (device) {
      Result<size_t> batch = RunChunkOnDevice(*device, tiles, next, count, tile_cost, deadline, measure);
      if (batch.ok()) {
        done_report.largest_batch = std::max(done_report.largest_batch, *batch);
      } else {
        chunk = batch.status();
      }
    } else {
      chunk = RunChunk(rgb, tiles, next, count, tile_cost, deadline, measure);
      if (chunk.ok()) done_report.largest_batch = 1;
    }
    if (report != nullptr) {  // kept up to date, so a failed run reports too
      report->tiles = total;
      report->oom_retries = planner ? planner->retries_used() : 0;
    }
    if (!chunk.ok()) {
      if (chunk.status().code() != StatusCode::kOutOfMemory) return chunk.status();
      // Not measured yet (the first tile itself failed): the estimate stands in until it is.
      if (!planner) planner.emplace(plan_options_, WorkingBytes({static_cast<uint64_t>(largest.w),
                                                                 static_cast<uint64_t>(largest.h)}));
      if (planner->ShrinkAfterOom(count, chunk.status())) {
        // Blocks kept for reuse are memory the retry may need (the backend's own cache).
        backends_.backend->ReleaseCachedMemory();
        if (backends_.fallback) backends_.fallback->ReleaseCachedMemory();
        continue;
      }
      if (report != nullptr) report->oom_retries = planner->retries_used();
      return Status(StatusCode::kOutOfMemory,
                    chunk.status().message() + " (after " + std::to_string(planner->retries_used()) +
                        " retries with smaller chunks; lower --tile-size or --max-chunk-mb, or free memory)");
    }
    if (tile_cost == 0) {
      // Liveness of the tile's run, plus its input and its output kept for the chunk.
      const uint64_t in_bytes = static_cast<uint64_t>(rgb.c) * (largest.w + largest.ext_w + 2 * geometry_.prepadding) *
                                (largest.h + largest.ext_h + 2 * geometry_.prepadding) * sizeof(float);
      const uint64_t out_bytes = static_cast<uint64_t>(rgb.c) * largest.w * largest.h * s * s * sizeof(float);
      tile_cost = stats.peak_live_bytes + in_bytes + out_bytes;
      {
        std::lock_guard lock(cost_mutex_);
        tile_costs_[{largest.w + largest.ext_w, largest.h + largest.ext_h}] = tile_cost;
      }
      if (planner) {
        planner->set_tile_cost_bytes(tile_cost);  // keeps the retries spent and the lowered cap
      } else {
        planner.emplace(plan_options_, tile_cost);
      }
    }
    for (size_t k = 0; k < count; ++k) {
      if (!device) {  // on a device, the chunk placed its tiles already
        const TileRect& t = tiles[next + k];
        const Tensor& o = (*chunk)[k];
        for (int q = 0; q < rgb.c; ++q) {
          for (int y = 0; y < o.h; ++y) {
            const float* src = o.channel(q) + static_cast<size_t>(y) * o.w;
            std::copy(src, src + o.w, out.channel(q) + static_cast<size_t>(t.y * s + y) * out.w + t.x * s);
          }
        }
      }
      if (progress) progress(next + k + 1, total);
    }
    next += count;
    done_report.chunks += 1;
    done_report.largest_chunk = std::max(done_report.largest_chunk, count);
  }
  if (device) {
    if (geometry_.adds_nearest_input) {
      Status added = device->tiling->AddNearestInput(device->input, s, device->output);
      if (!added.ok()) return added;
    }
    Result<Tensor> downloaded = device->tiling->DownloadImage(device->output);
    if (!downloaded.ok()) return downloaded.status();
    out = std::move(downloaded).value();
    device.reset();  // the device's images are given back before the post-processing
  }
  if (geometry_.adds_nearest_input && !done_report.tiles_on_device) {
    for (int q = 0; q < out.c; ++q) {
      for (int y = 0; y < out.h; ++y) {
        for (int x = 0; x < out.w; ++x) out.at(q, y, x) += rgb.at(q, y / s, x / s);
      }
    }
  }
  done_report.tiles = total;
  done_report.tile_cost_bytes = tile_cost;
  done_report.oom_retries = planner ? planner->retries_used() : 0;
  if (report != nullptr) *report = done_report;
  return out;
}

// The core-only build (the GPU check program, docs/gpu.md) has no image
// libraries: it runs RunPlanar on pixels it decoded beforehand.
#ifdef TESSERA_ENGINE_CORE_ONLY
Result<imaging::Image> ModelUpscaler::Run(const imaging::Image&, const Deadline&, const ProgressFn&) const {
  return Status(StatusCode::kUnsupported, "this build of the engine has no image codecs; use RunPlanar");
}
#else
Result<imaging::Image> ModelUpscaler::Run(const imaging::Image& input, const Deadline& deadline,
                                          const ProgressFn& progress) const {
  Result<imaging::PixelBuffer> pixels = imaging::ToPixels(input);
  if (!pixels.ok()) return pixels.status();
  const int W = pixels->width, H = pixels->height, bands = pixels->bands;
  const bool alpha = bands == 4;
  Tensor rgb = Tensor::Chw(3, H, W);
  Tensor a = alpha ? Tensor::Chw(1, H, W) : Tensor();
  for (int y = 0; y < H; ++y) {
    for (int x = 0; x < W; ++x) {
      const uint8_t* px = pixels->data.data() + (static_cast<size_t>(y) * W + x) * bands;
      for (int q = 0; q < 3; ++q) rgb.at(q, y, x) = px[q] / 255.f;
      if (alpha) a.at(0, y, x) = px[3] / 255.f;
    }
  }
  Result<Tensor> up = RunPlanar(rgb, deadline, progress);
  if (!up.ok()) return up.status();
  // Alpha does not go through the model: bicubic, as the reference programs do.
  Tensor up_alpha;
  if (alpha) {
    ncnn::ParamDict p;
    p.Set(0, ncnn::ParamValue{false, false, {3}});
    p.Set(3, ncnn::ParamValue{false, false, {static_cast<double>(H * entry_.scale)}});
    p.Set(4, ncnn::ParamValue{false, false, {static_cast<double>(W * entry_.scale)}});
    Result<Tensor> ua = ops::Interp(a, p);
    if (!ua.ok()) return ua.status();
    up_alpha = std::move(ua).value();
  }
  imaging::PixelBuffer out;
  out.width = up->w;
  out.height = up->h;
  out.bands = bands;
  out.data.resize(static_cast<size_t>(out.width) * out.height * bands);
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      uint8_t* px = out.data.data() + (static_cast<size_t>(y) * out.width + x) * bands;
      for (int q = 0; q < 3; ++q) px[q] = ToByte(up->at(q, y, x));
      if (alpha) px[3] = ToByte(up_alpha.at(0, y, x));
    }
  }
  return imaging::FromPixels(out);
}
#endif

}  // namespace tessera::engine
