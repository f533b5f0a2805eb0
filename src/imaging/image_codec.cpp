#include "imaging/image_codec.h"

#include <vips/vips.h>

#include <cctype>

#include "imaging/vips_runtime.h"

namespace tessera::imaging {
namespace {

Status TimeoutError(std::string_view what) {
  return {StatusCode::kTimeout, std::string(what) + " cancelled: request deadline passed"};
}

// Wraps a libvips call result: ok, or the deadline / the given error kind.
Status Check(int rc, const Deadline& deadline, StatusCode kind, std::string_view what) {
  if (rc == 0) return Status::Ok();
  std::string detail = TakeVipsError();
  if (deadline.Expired()) return TimeoutError(what);
  return {kind, std::string(what) + " failed" + (detail.empty() ? "" : ": " + detail)};
}

}  // namespace

std::optional<OutputFormat> ParseOutputFormat(std::string_view text) {
  if (text == "png") return OutputFormat::kPng;
  if (text == "jpg" || text == "jpeg") return OutputFormat::kJpeg;
  if (text == "webp") return OutputFormat::kWebp;
  return std::nullopt;
}

std::string_view OutputFormatName(OutputFormat format) {
  switch (format) {
    case OutputFormat::kPng: return "png";
    case OutputFormat::kJpeg: return "jpg";
    case OutputFormat::kWebp: return "webp";
  }
  return "png";
}

std::string_view OutputFormatExtension(OutputFormat format) {
  switch (format) {
    case OutputFormat::kPng: return ".png";
    case OutputFormat::kJpeg: return ".jpg";
    case OutputFormat::kWebp: return ".webp";
  }
  return ".png";
}

Result<ImageInfo> ProbeImage(std::span<const uint8_t> bytes) {
  const char* loader = vips_foreign_find_load_buffer(bytes.data(), bytes.size());
  if (loader == nullptr) {
    vips_error_clear();
    return BadImageError("not a supported image (PNG, JPEG, WebP, TIFF, GIF)");
  }
  // Lazy: for these formats libvips reads the header here and pixels only later.
  // "VipsForeignLoadPngBuffer" -> "png"
  std::string name = loader;
  for (std::string_view affix : {"VipsForeignLoad", "Buffer"}) {
    if (size_t at = name.find(affix); at != std::string::npos) name.erase(at, affix.size());
  }
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  VipsImage* raw =
      vips_image_new_from_buffer(bytes.data(), bytes.size(), "", "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
  if (raw == nullptr) {
    std::string detail = TakeVipsError();
    return BadImageError("unreadable " + name + " header" + (detail.empty() ? "" : " (" + detail + ")") +
                         "; the file is truncated or corrupt");
  }
  Image image(raw);
  ImageInfo info;
  info.width = image.width();
  info.height = image.height();
  info.bands = image.bands();
  info.loader = name;
  return info;
}

Result<Image> Materialize(Image lazy, const Deadline& deadline, std::string_view what) {
  // The guard stops libvips at its next progress signal; a small image may be
  // done before the first one, so the deadline is also checked around the work.
  if (deadline.Expired()) return TimeoutError(what);
  EvalDeadlineGuard guard(lazy.get(), deadline);
  VipsImage* out = vips_image_copy_memory(lazy.get());
  if (out == nullptr) return Check(-1, deadline, StatusCode::kInternal, what);
  Image image(out);
  if (deadline.Expired()) return TimeoutError(what);
  return image;
}

Result<Image> DecodeImage(std::span<const uint8_t> bytes, const Deadline& deadline) {
  // libvips 8.14 does not always fail a decode whose pixel data is corrupt: a
  // read error in its loader thread can race with the copy, which then succeeds
  // with garbage pixels (a PNG with a broken zlib stream: 50 to 86 of 200 decodes
  // under load, tests/imaging). The loader always leaves its message in the
  // error buffer, so a message there after a "successful" decode means it
  // failed. The buffer is process-wide: cleared first, so a message already
  // there is not mistaken for this decode's.
  vips_error_clear();
  VipsImage* raw = vips_image_new_from_buffer(bytes.data(), bytes.size(), "", "access", VIPS_ACCESS_SEQUENTIAL,
                                              "fail_on", VIPS_FAIL_ON_ERROR, nullptr);
  if (raw == nullptr) return BadImageError("cannot decode: " + TakeVipsError());
  Image image(raw);

  if (vips_image_get_interpretation(image.get()) != VIPS_INTERPRETATION_sRGB ||
      vips_image_get_format(image.get()) != VIPS_FORMAT_UCHAR) {
    VipsImage* srgb = nullptr;
    if (vips_colourspace(image.get(), &srgb, VIPS_INTERPRETATION_sRGB, nullptr) != 0) {
      return BadImageError("cannot convert to sRGB: " + TakeVipsError());
    }
    image = Image(srgb);
    if (vips_image_get_format(image.get()) != VIPS_FORMAT_UCHAR) {
      VipsImage* cast = nullptr;
      if (vips_cast_uchar(image.get(), &cast, nullptr) != 0) return BadImageError("cannot convert to 8-bit");
      image = Image(cast);
    }
  }
  if (image.bands() > 4) {
    VipsImage* first = nullptr;
    if (vips_extract_band(image.get(), &first, 0, "n", 4, nullptr) != 0) return BadImageError("too many bands");
    image = Image(first);
  }
  Result<Image> decoded = Materialize(std::move(image), deadline, "decode");
  if (!decoded.ok() && decoded.status().code() == StatusCode::kInternal) {
    return BadImageError(decoded.status().message());
  }
  if (decoded.ok() && vips_error_buffer()[0] != '\0') {
    return BadImageError("cannot decode: " + TakeVipsError() + "; the file is truncated or corrupt");
  }
  return decoded;
}

Result<std::vector<uint8_t>> EncodeImage(const Image& image, OutputFormat format, const Deadline& deadline) {
  // JPEG has no alpha: flatten onto black, as most viewers show it.
  Image flat;
  if (format == OutputFormat::kJpeg && image.bands() == 4) {
    VipsImage* flattened = nullptr;
    if (vips_flatten(image.get(), &flattened, nullptr) != 0) {
      return Check(-1, deadline, StatusCode::kInternal, "encode");
    }
    flat = Image(flattened);
  }
  const Image& source = flat.empty() ? image : flat;
  if (deadline.Expired()) return TimeoutError("encode");  // as in Materialize: the guard may never fire
  EvalDeadlineGuard guard(source.get(), deadline);
  void* buffer = nullptr;
  size_t length = 0;
  int rc = -1;
  switch (format) {
    case OutputFormat::kPng:
      // zlib level 3 with adaptive row filters: on a 512x512 noise image (deflate's
      // worst case) it took 42 ms against 94 ms at level 6, for a smaller file.
      rc = vips_pngsave_buffer(source.get(), &buffer, &length, "strip", TRUE, "compression", 3, "filter",
                               VIPS_FOREIGN_PNG_FILTER_ALL, nullptr);
      break;
    case OutputFormat::kJpeg:
      rc = vips_jpegsave_buffer(source.get(), &buffer, &length, "strip", TRUE, "Q", 92, nullptr);
      break;
    case OutputFormat::kWebp:
      rc = vips_webpsave_buffer(source.get(), &buffer, &length, "strip", TRUE, "Q", 90, nullptr);
      break;
  }
  Status status = Check(rc, deadline, StatusCode::kInternal, "encode");
  if (!status.ok()) return status;
  std::vector<uint8_t> bytes(static_cast<uint8_t*>(buffer), static_cast<uint8_t*>(buffer) + length);
  g_free(buffer);
  return bytes;
}

}  // namespace tessera::imaging
