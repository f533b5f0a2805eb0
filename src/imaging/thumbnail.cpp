#include "imaging/thumbnail.h"

#include <vips/vips.h>

#include "imaging/image.h"
#include "imaging/image_codec.h"
#include "imaging/vips_runtime.h"

namespace tessera::imaging {

Result<std::vector<uint8_t>> MakeThumbnail(std::span<const uint8_t> bytes, int max_side, uint64_t max_pixels,
                                           const Deadline& deadline) {
  auto info = ProbeImage(bytes);
  if (!info.ok()) return info.status();
  if (info->pixels() > max_pixels) {
    return InvalidError("thumbnail: the image has " + std::to_string(info->pixels()) + " pixels, more than " +
                        std::to_string(max_pixels));
  }
  VipsImage* out = nullptr;
  // VIPS_SIZE_DOWN: a small image keeps its size instead of being enlarged.
  if (vips_thumbnail_buffer(const_cast<uint8_t*>(bytes.data()), bytes.size(), &out, max_side, "height", max_side,
                            "size", VIPS_SIZE_DOWN, nullptr) != 0) {
    return BadImageError("thumbnail: " + TakeVipsError());
  }
  Image thumbnail(out);
  auto materialized = Materialize(std::move(thumbnail), deadline, "thumbnail");
  if (!materialized.ok()) return materialized.status();
  return EncodeImage(*materialized, OutputFormat::kWebp, deadline);
}

}  // namespace tessera::imaging
