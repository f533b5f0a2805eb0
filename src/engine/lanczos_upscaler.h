// Lanczos-3 resampling by any factor in [0.1, 16] (libvips' resize: a Lanczos-3
// reduce when shrinking). Alpha is premultiplied around the resampling so
// transparent pixels do not bleed their colour into opaque ones.
#pragma once

#include <string_view>

#include "engine/upscaler.h"

namespace tessera::engine {

class LanczosUpscaler : public Upscaler {
 public:
  static constexpr double kMinFactor = 0.1;
  static constexpr double kMaxFactor = 16.0;

  // Parses "2", "x2", "X2", "1.5", "x0.5"; kInvalid outside [kMinFactor, kMaxFactor].
  static Result<double> ParseFactor(std::string_view text);

  explicit LanczosUpscaler(double factor) : factor_(factor) {}

  double factor() const { return factor_; }
  std::string Describe() const override;
  Size OutputSize(Size input) const override;
  uint64_t WorkingBytes(Size input) const override;
  Result<imaging::Image> Run(const imaging::Image& input, const Deadline& deadline,
                             const ProgressFn& progress) const override;

 private:
  double factor_;
};

}  // namespace tessera::engine
