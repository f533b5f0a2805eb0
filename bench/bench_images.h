// Test images the benchmarks share: grey gaussian noise, the worst case for
// PNG compression, encoded with libvips.
#pragma once

#include <cstdint>
#include <vector>

#include <vips/vips.h>

#include "imaging/vips_runtime.h"

namespace tessera::bench {

// A side x side RGB PNG of noise (sigma 30) around `mean`.
inline std::vector<uint8_t> NoisePng(int side, double mean = 128.0) {
  imaging::InitImaging({});
  VipsImage* noise = nullptr;
  VipsImage* rgb = nullptr;
  VipsImage* typed = nullptr;
  vips_gaussnoise(&noise, side, side, "sigma", 30.0, "mean", mean, nullptr);
  VipsImage* bands[3] = {noise, noise, noise};
  vips_bandjoin(bands, &rgb, 3, nullptr);
  vips_cast_uchar(rgb, &typed, nullptr);
  void* buf = nullptr;
  size_t len = 0;
  vips_pngsave_buffer(typed, &buf, &len, nullptr);
  std::vector<uint8_t> bytes(static_cast<uint8_t*>(buf), static_cast<uint8_t*>(buf) + len);
  g_free(buf);
  for (VipsImage* i : {noise, rgb, typed}) g_object_unref(i);
  return bytes;
}

}  // namespace tessera::bench
