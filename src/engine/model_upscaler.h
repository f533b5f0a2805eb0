// Super-resolution with an ncnn model: the family's pre-processing, a fixed tile
// grid, the graph on each tile, and the family's post-processing.
//
// Geometry per family (as the reference programs do it on their CPU paths):
//   realesrgan     10 px of pre-padding, reflected at image borders; the model's
//                  output covers the padding, which is cropped off.
//   realcugan      18 / 14 / 19 px (x2 / x3 / x4), reflected; the padded tile is
//                  extended right and bottom to a multiple of 2 (x2, x4) or 4 (x3);
//                  the model crops its own padding; the x4 models predict a residual
//                  that is added to the nearest-neighbour upscaled input.
//   waifu2x-cunet  18 px (28 for noise-only models), replicated at the borders,
//                  same alignment rule as realcugan.
// Inside the image, a tile's padding is its neighbours' pixels, so tiles join
// without seams. The grid depends only on the image size and the tile size —
// never on free memory — so the same input and options give the same bytes.
//
// Tiles run in chunks sized from the free memory (engine/memory_planner.h): a
// chunk's memory is reserved from the process's MemoryBudget, its tiles' outputs
// are kept until the chunk is done, and an out-of-memory (the budget's or the
// allocator's) shrinks the chunk and runs it again. Chunks change when tiles
// run, never what they compute.
//
// On a device backend that cuts tiles itself (engine/device_tiling.h) and runs
// every layer of the model, the image is uploaded once, each chunk's tiles of
// one size run as one batch, their outputs are placed in an output image on the
// device (with the Real-CUGAN x4 nearest residual added there), and that image
// is downloaded once; when the two images do not fit on the device, tiles go
// through the host one at a time. Either way the bytes are the same.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/backend_registry.h"
#include "engine/graph_executor.h"
#include "engine/memory_planner.h"
#include "engine/model_catalog.h"
#include "engine/ncnn/model.h"
#include "engine/upscaler.h"

namespace tessera::engine {

struct TileGeometry {
  int prepadding = 0;
  int align = 1;           // padded tile width/height rounded up to a multiple of this
  bool reflect = true;     // false: replicate the edge pixel
  bool model_crops = false;  // the model's output already excludes the padding
  bool adds_nearest_input = false;  // the model predicts a residual over the nearest-upscaled input
};

TileGeometry GeometryFor(const ModelEntry& entry);

// The tile edge used when --tile-size is 0: fixed, so output never depends on memory.
inline constexpr int kDefaultTileSize = 200;

// How one RunPlanar() went, for logs and tests.
struct TilingReport {
  size_t tiles = 0;
  size_t chunks = 0;
  size_t largest_chunk = 0;      // tiles
  uint64_t tile_cost_bytes = 0;  // measured on the largest tile
  int oom_retries = 0;
  bool tiles_on_device = false;  // cut and placed on the device (engine/device_tiling.h)
  size_t largest_batch = 0;      // tiles run in one pass of the model
};

class ModelUpscaler : public Upscaler {
 public:
  // Loads `entry` from `model_dir`, to run on `backends` (empty: the CPU's,
  // engine/backend_registry.h). `tile_size` 0 = kDefaultTileSize.
  static Result<std::unique_ptr<ModelUpscaler>> Load(const std::string& model_dir, const ModelEntry& entry,
                                                     int tile_size, BackendSet backends = {});
  // Wraps an already loaded `model` (e.g. from the plan cache); the same as Load after parsing.
  static std::unique_ptr<ModelUpscaler> FromModel(const ModelEntry& entry, ncnn::Model model, int tile_size,
                                                  BackendSet backends = {});

  // Runs one tile of the configured size through the model, so that what the
  // backend prepares per shape (primitives, packed weights) is ready before the
  // first request. Tiles at the image edges may still be prepared on first use.
  // A backend that prepares nothing per shape (Backend::PreparesPerShape)
  // warms up on a kWarmUpEdge tile: the same preparation, a fraction of the
  // work (200x200 on llvmpipe is most of a small image's time).
  Status WarmUp() const;
  static constexpr int kWarmUpEdge = 32;
  // The tile edge Load uses for `tile_size` (0 = kDefaultTileSize).
  static int ResolvedTileSize(int tile_size) { return tile_size > 0 ? tile_size : kDefaultTileSize; }

  std::string Describe() const override;
  Size OutputSize(Size input) const override;
  uint64_t WorkingBytes(Size input) const override;
  Result<imaging::Image> Run(const imaging::Image& input, const Deadline& deadline,
                             const ProgressFn& progress) const override;

  // The same on planar float RGB in [0, 1] (c x h x w), for tests: returns the
  // model's output in the same layout, before rounding to 8 bits.
  Result<Tensor> RunPlanar(const Tensor& rgb, const Deadline& deadline, const ProgressFn& progress = nullptr,
                           TilingReport* report = nullptr) const;

  // How chunks are sized, and the budget their memory is reserved from (null:
  // none). Call before the upscaler is shared between threads.
  void SetMemoryPlan(MemoryPlanOptions options, std::shared_ptr<MemoryBudget> budget);

  // The backend's choices for this model (GraphExecutor::SavedChoices), and
  // choices given back before the upscaler is shared (runtime/plan_choices.h).
  std::vector<std::string> SavedChoices() const { return executor_.SavedChoices(); }
  void RestoreChoices(const std::vector<std::string>& choices) { executor_.RestoreChoices(choices); }
  // Whether the model runs on a device (not host memory): what warms up at load.
  bool OnDevice() const { return !backends_.backend->HostMemory(); }

  const ModelEntry& entry() const { return entry_; }
  int tile_size() const { return tile_size_; }
  // Bytes of the weights held as loaded (fp32), what keeping this model resident costs.
  uint64_t WeightBytes() const;

 private:
  ModelUpscaler(ModelEntry entry, std::unique_ptr<ncnn::Model> model, int tile_size, BackendSet backends);

  struct TileRect {
    int x = 0, y = 0, w = 0, h = 0;  // the tile's own pixels in the input
    int ext_w = 0, ext_h = 0;        // right/bottom extension to the family's alignment
  };
  std::vector<TileRect> TileGrid(int width, int height) const;
  // One tile through the model; returns only its own pixels, upscaled.
  Result<Tensor> RunTile(const Tensor& rgb, const TileRect& tile, const Deadline& deadline, RunStats* stats) const;
  Result<std::vector<Tensor>> RunChunk(const Tensor& rgb, const std::vector<TileRect>& tiles, size_t first,
                                       size_t count, uint64_t tile_cost, const Deadline& deadline,
                                       RunStats* stats) const;
  // The input and output images on a device that cuts tiles itself.
  struct DeviceImages {
    const DeviceTiling* tiling = nullptr;
    Tensor input;
    Tensor output;
  };
  // Empty when the backend does not cut tiles, runs only part of the model, or
  // has no room for the two images; an error for any other failure.
  Result<std::optional<DeviceImages>> UploadForDeviceTiles(const Tensor& rgb) const;
  // The chunk's tiles run in batches of one size, their outputs placed in
  // images.output. Returns the largest batch.
  Result<size_t> RunChunkOnDevice(DeviceImages& images, const std::vector<TileRect>& tiles, size_t first,
                                  size_t count, uint64_t tile_cost, const Deadline& deadline, RunStats* stats) const;
  // The chunk's memory promised against the process's budget (empty without one).
  Result<MemoryBudget::Reservation> ReserveChunk(uint64_t tile_cost, size_t count) const;
  // The measured cost of a tile of this padded-free size; 0 when not measured yet.
  uint64_t KnownTileCost(int width, int height) const;

  ModelEntry entry_;
  std::unique_ptr<ncnn::Model> model_;
  BackendSet backends_;  // before the executor, which runs on them
  GraphExecutor executor_;
  TileGeometry geometry_;
  int tile_size_;
  MemoryPlanOptions plan_options_;
  std::shared_ptr<MemoryBudget> budget_;
  mutable std::mutex cost_mutex_;
  mutable std::map<std::pair<int, int>, uint64_t> tile_costs_;  // by tile width, height
};

}  // namespace tessera::engine
