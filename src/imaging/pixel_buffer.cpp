#include "imaging/pixel_buffer.h"

#include <vips/vips.h>

#include <cstring>

#include "imaging/vips_runtime.h"

namespace tessera::imaging {

Result<PixelBuffer> ToPixels(const Image& image) {
  if (vips_image_get_format(image.get()) != VIPS_FORMAT_UCHAR) return InternalError("ToPixels needs an 8-bit image");
  size_t size = 0;
  void* memory = vips_image_write_to_memory(image.get(), &size);
  if (memory == nullptr) return InternalError("cannot read pixels: " + TakeVipsError());
  PixelBuffer out;
  out.width = image.width();
  out.height = image.height();
  out.bands = image.bands();
  out.data.assign(static_cast<uint8_t*>(memory), static_cast<uint8_t*>(memory) + size);
  g_free(memory);
  return out;
}

Result<Image> FromPixels(const PixelBuffer& pixels) {
  VipsImage* image = vips_image_new_from_memory_copy(pixels.data.data(), pixels.data.size(), pixels.width,
                                                     pixels.height, pixels.bands, VIPS_FORMAT_UCHAR);
  if (image == nullptr) return InternalError("cannot wrap pixels: " + TakeVipsError());
  Image wrapped(image);
  VipsImage* tagged = nullptr;
  if (vips_copy(wrapped.get(), &tagged, "interpretation", VIPS_INTERPRETATION_sRGB, nullptr) != 0) {
    return InternalError("cannot tag pixels as sRGB: " + TakeVipsError());
  }
  return Image(tagged);
}

}  // namespace tessera::imaging
