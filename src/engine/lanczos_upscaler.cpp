#include "engine/lanczos_upscaler.h"

#include <vips/vips.h>

#include <charconv>
#include <cmath>
#include <cstdio>

#include "imaging/image_codec.h"
#include "imaging/vips_runtime.h"

namespace tessera::engine {
namespace {

uint64_t Scaled(uint64_t n, double factor) {
  // libvips rounds the scaled size to the nearest integer, with a floor of 1.
  auto v = static_cast<uint64_t>(std::llround(static_cast<double>(n) * factor));
  return v == 0 ? 1 : v;
}

}  // namespace

Result<double> LanczosUpscaler::ParseFactor(std::string_view text) {
  std::string_view digits = text;
  if (!digits.empty() && (digits.front() == 'x' || digits.front() == 'X')) digits.remove_prefix(1);
  double factor = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), factor);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || !std::isfinite(factor)) {
    return InvalidError("lanczos scale \"" + std::string(text) + "\" is not a number; use e.g. x2, 4 or 0.5");
  }
  if (factor < kMinFactor || factor > kMaxFactor) {
    return InvalidError("lanczos scale " + std::string(text) + " is outside 0.1-16");
  }
  return factor;
}

std::string LanczosUpscaler::Describe() const {
  char buf[48];
  std::snprintf(buf, sizeof buf, "lanczos x%g", factor_);
  return buf;
}

Size LanczosUpscaler::OutputSize(Size input) const {
  return {Scaled(input.width, factor_), Scaled(input.height, factor_)};
}

uint64_t LanczosUpscaler::WorkingBytes(Size input) const {
  // The resized image is materialised as 8-bit RGBA at most; libvips' pipeline
  // buffers between the stages are small, per-thread strips.
  return OutputSize(input).pixels() * 4 + (16ull << 20);
}

Result<imaging::Image> LanczosUpscaler::Run(const imaging::Image& input, const Deadline& deadline,
                                            const ProgressFn& progress) const {
  const bool has_alpha = input.bands() == 4 || input.bands() == 2;
  VipsImage* current = input.get();
  g_object_ref(current);
  imaging::Image stage(current);

  VipsImage* out = nullptr;
  // Takes the result of one libvips call that wrote `out`, as the next stage.
  auto apply = [&](int rc, const char* what) -> Status {
    if (rc != 0) return InternalError(std::string("lanczos ") + what + " failed: " + imaging::TakeVipsError());
    stage = imaging::Image(out);
    return Status::Ok();
  };

  Status status;
  if (has_alpha) {
    status = apply(vips_premultiply(stage.get(), &out, nullptr), "premultiply");
    if (!status.ok()) return status;
  }
  status = apply(vips_resize(stage.get(), &out, factor_, "kernel", VIPS_KERNEL_LANCZOS3, nullptr), "resize");
  if (!status.ok()) return status;
  if (has_alpha) {
    status = apply(vips_unpremultiply(stage.get(), &out, nullptr), "unpremultiply");
    if (!status.ok()) return status;
  }
  if (vips_image_get_format(stage.get()) != VIPS_FORMAT_UCHAR) {
    // Round to nearest before the cast, which would otherwise truncate.
    status = apply(vips_rint(stage.get(), &out, nullptr), "round");
    if (!status.ok()) return status;
    status = apply(vips_cast_uchar(stage.get(), &out, nullptr), "cast");
    if (!status.ok()) return status;
  }
  Result<imaging::Image> resized = imaging::Materialize(std::move(stage), deadline, "lanczos resize");
  if (resized.ok() && progress) progress(1, 1);
  return resized;
}

}  // namespace tessera::engine
