#include "imaging/image.h"

#include <vips/vips.h>

namespace tessera::imaging {

Image& Image::operator=(Image&& other) noexcept {
  if (this != &other) {
    if (image_ != nullptr) g_object_unref(image_);
    image_ = other.image_;
    other.image_ = nullptr;
  }
  return *this;
}

Image::~Image() {
  if (image_ != nullptr) g_object_unref(image_);
}

int Image::width() const { return image_ ? vips_image_get_width(image_) : 0; }
int Image::height() const { return image_ ? vips_image_get_height(image_) : 0; }
int Image::bands() const { return image_ ? vips_image_get_bands(image_) : 0; }

}  // namespace tessera::imaging
