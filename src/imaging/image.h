// An owned, decoded image (a libvips image handle). Move-only; the header keeps
// libvips out of every file that merely passes images around.
#pragma once

#include <cstdint>

typedef struct _VipsImage VipsImage;

namespace tessera::imaging {

class Image {
 public:
  Image() = default;
  // Takes ownership of one reference to `image`.
  explicit Image(VipsImage* image) : image_(image) {}
  Image(Image&& other) noexcept : image_(other.image_) { other.image_ = nullptr; }
  Image& operator=(Image&& other) noexcept;
  Image(const Image&) = delete;
  Image& operator=(const Image&) = delete;
  ~Image();

  bool empty() const { return image_ == nullptr; }
  int width() const;
  int height() const;
  int bands() const;
  uint64_t pixels() const { return static_cast<uint64_t>(width()) * static_cast<uint64_t>(height()); }
  VipsImage* get() const { return image_; }

 private:
  VipsImage* image_ = nullptr;
};

}  // namespace tessera::imaging
