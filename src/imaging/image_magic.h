// Recognises an image container from its first bytes, before anything decodes
// it: a server can refuse a body that is not an image at all (a JSON document, a
// zip) at once, while a damaged image with a valid signature still goes to the
// decoder and fails there, per image. Pure; no libvips.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace tessera::imaging {

// Bytes SniffImageFormat needs to decide (fewer: it decides on what it has).
constexpr size_t kImageMagicBytes = 12;

// "png", "jpeg", "webp", "gif", "tiff", "bmp", "heif" (ISO-BMFF heic/avif), or
// nullopt when the bytes start no image format the decoder knows.
std::optional<std::string_view> SniffImageFormat(std::span<const uint8_t> head);

// The formats SniffImageFormat knows, for messages: "PNG, JPEG, WebP, ...".
std::string_view KnownImageFormats();

}  // namespace tessera::imaging
