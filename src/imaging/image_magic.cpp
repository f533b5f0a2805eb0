#include "imaging/image_magic.h"

#include <cstring>

namespace tessera::imaging {
namespace {

bool StartsWith(std::span<const uint8_t> head, const char* signature, size_t length, size_t at = 0) {
  return head.size() >= at + length && std::memcmp(head.data() + at, signature, length) == 0;
}

}  // namespace

std::optional<std::string_view> SniffImageFormat(std::span<const uint8_t> head) {
  if (StartsWith(head, "\x89PNG\r\n\x1a\n", 8)) return "png";
  if (StartsWith(head, "\xff\xd8\xff", 3)) return "jpeg";
  if (StartsWith(head, "RIFF", 4) && StartsWith(head, "WEBP", 4, 8)) return "webp";
  if (StartsWith(head, "GIF87a", 6) || StartsWith(head, "GIF89a", 6)) return "gif";
  if (StartsWith(head, "II*\0", 4) || StartsWith(head, "MM\0*", 4)) return "tiff";
  if (StartsWith(head, "BM", 2) && head.size() >= 6) return "bmp";
  if (StartsWith(head, "ftyp", 4, 4)) {
    for (const char* brand : {"heic", "heix", "mif1", "msf1", "avif", "avis"}) {
      if (StartsWith(head, brand, 4, 8)) return "heif";
    }
  }
  return std::nullopt;
}

std::string_view KnownImageFormats() { return "PNG, JPEG, WebP, GIF, TIFF, BMP, HEIF/AVIF"; }

}  // namespace tessera::imaging
