// Image bytes <-> decoded images. Decoding normalises every input to 8-bit sRGB
// (3 bands, or 4 with alpha): grey becomes RGB, 16-bit is scaled to 8-bit, so every
// engine sees one layout and outputs are stable.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "imaging/image.h"
#include "util/deadline.h"
#include "util/status.h"

namespace tessera::imaging {

enum class OutputFormat { kPng, kJpeg, kWebp };

std::optional<OutputFormat> ParseOutputFormat(std::string_view text);  // png | jpg | jpeg | webp
std::string_view OutputFormatName(OutputFormat format);                // png | jpg | webp
std::string_view OutputFormatExtension(OutputFormat format);           // .png | .jpg | .webp

struct ImageInfo {
  int width = 0;
  int height = 0;
  int bands = 0;
  std::string loader;  // the format libvips recognised: "png", "jpeg", "webp", ...
  uint64_t pixels() const { return static_cast<uint64_t>(width) * static_cast<uint64_t>(height); }
};

// Reads only the header: dimensions are known before a single pixel is decoded,
// so decompression bombs can be refused cheaply. kBadImage when not an image.
Result<ImageInfo> ProbeImage(std::span<const uint8_t> bytes);

// Decodes into memory as 8-bit sRGB(A). kBadImage when the bytes are corrupt,
// kTimeout when the deadline passed during decoding.
Result<Image> DecodeImage(std::span<const uint8_t> bytes, const Deadline& deadline);

// Encodes with metadata stripped, so equal pixels give equal bytes.
Result<std::vector<uint8_t>> EncodeImage(const Image& image, OutputFormat format, const Deadline& deadline);

// Materialises a lazily defined image into memory, honouring the deadline.
// Consumes `lazy`. The one place where pixel work is forced to happen.
Result<Image> Materialize(Image lazy, const Deadline& deadline, std::string_view what);

}  // namespace tessera::imaging
