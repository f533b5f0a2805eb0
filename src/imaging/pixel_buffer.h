// Decoded images as plain interleaved 8-bit pixels, for engines that compute on
// raw arrays rather than through libvips.
#pragma once

#include <cstdint>
#include <vector>

#include "imaging/image.h"
#include "util/status.h"

namespace tessera::imaging {

struct PixelBuffer {
  int width = 0;
  int height = 0;
  int bands = 0;  // 3 (RGB) or 4 (RGBA)
  std::vector<uint8_t> data;  // row-major, interleaved
};

// `image` must be 8-bit (as DecodeImage makes it).
Result<PixelBuffer> ToPixels(const Image& image);
Result<Image> FromPixels(const PixelBuffer& pixels);

}  // namespace tessera::imaging
