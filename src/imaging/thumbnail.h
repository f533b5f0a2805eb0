// Small previews of images for the dashboard (GET /jobs/{id}/thumbnail): made
// with libvips' shrink-on-load, so a large JPEG or WebP is never decoded whole.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "util/deadline.h"
#include "util/status.h"

namespace tessera::imaging {

// A WebP whose longer side is at most `max_side` (never enlarged). kBadImage for
// bytes that are not a readable image; kInvalid for more than `max_pixels` in
// the source (a decompression bomb, refused from its header).
Result<std::vector<uint8_t>> MakeThumbnail(std::span<const uint8_t> bytes, int max_side, uint64_t max_pixels,
                                           const Deadline& deadline);

}  // namespace tessera::imaging
