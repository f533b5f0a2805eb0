// Cutting an image into tiles and putting the tiles' outputs back, in a device
// backend's own memory (optional; engine/backend.h, Backend::tiling()).
//
// Without it, every tile's padded input is made on the host and uploaded, and
// every tile's output downloaded and cropped on the host: for a 1080p frame at
// x4 that is ~400 MB of fp32 crossing the bus and touched by one CPU thread,
// more than the model itself takes on a large GPU. With it, the image goes up
// once and comes back once, the padding and cropping are kernels, and tiles of
// one size run as one batch (one launch per layer for several tiles).
//
// Values are converted exactly as FromHost and ToHost convert them, so the
// output is byte-identical to the host path, whatever the batch.
#pragma once

#include <vector>

#include "engine/tensor.h"
#include "util/status.h"

namespace tessera::engine {

// A tile's padded input: its top-left corner in image coordinates. It may start
// before the image or end past it: those pixels are the image's mirrored
// (reflect) or edge (replicate) pixels, as the host path makes them.
struct TileCut {
  int x = 0, y = 0;
};

// Where batch item k's kept output goes: its (src_x, src_y, w, h) rectangle at
// (dst_x, dst_y) of the output image.
struct TilePlacement {
  int src_x = 0, src_y = 0;
  int dst_x = 0, dst_y = 0;
  int w = 0, h = 0;
};

class DeviceTiling {
 public:
  virtual ~DeviceTiling() = default;

  // Tiles per batch at most.
  virtual int MaxBatch() const = 0;
  // A plain fp32 host image (c x h x w) onto the device, as it is (plain fp32).
  virtual Result<Tensor> UploadImage(const Tensor& host) const = 0;
  // A plain fp32 image of c x h x w on the device (values unspecified).
  virtual Result<Tensor> NewImage(int c, int h, int w) const = 0;
  // The padded inputs at `cuts`, each image.c x h x w, as one batch (n =
  // cuts.size()) in the layout and type the backend's FromHost makes.
  virtual Result<Tensor> GatherTiles(const Tensor& image, const std::vector<TileCut>& cuts, int h, int w,
                                     bool reflect) const = 0;
  // Batch item k's rectangle `placements[k]` written into `image`.
  virtual Status PlaceTiles(const Tensor& batch, const std::vector<TilePlacement>& placements, Tensor& image) const = 0;
  // output[c, y, x] += input[c, y / scale, x / scale]: the nearest-upscaled
  // input a residual model (Real-CUGAN x4) predicts over, added as the host
  // path adds it (one fp32 addition per value).
  virtual Status AddNearestInput(const Tensor& input, int scale, Tensor& output) const = 0;
  // The image back on the host (plain fp32), once every write to it is done.
  virtual Result<Tensor> DownloadImage(const Tensor& image) const = 0;
};

}  // namespace tessera::engine
