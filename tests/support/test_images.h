// Test inputs made on the fly with libvips, and helpers to look inside outputs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "protocol/codec.h"

namespace tessera::test {

// Path of the tessera binary under test.
inline const char* TesseraBinary() { return TESSERA_BINARY; }

// Starts libvips once for the test process.
void InitImagingForTests();

// A width x height PNG filled with one colour; bands 1 (grey), 3 (RGB) or 4 (RGBA).
std::vector<uint8_t> SolidPng(int width, int height, std::vector<uint8_t> colour);
// A width x height PNG with `bands` bands (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA)
// of `bits` bits (8 or 16), filled with a gradient.
std::vector<uint8_t> GradientPng(int width, int height, int bands, int bits);
// A PNG with a diagonal gradient and noise-like texture: compresses badly and
// costs real work to resample.
std::vector<uint8_t> TexturedPng(int width, int height);
// A valid small PNG whose header claims width x height: a decompression bomb as
// far as any header check can tell.
std::vector<uint8_t> PngClaimingSize(uint32_t width, uint32_t height);

struct DecodedPixels {
  int width = 0;
  int height = 0;
  int bands = 0;
  std::vector<uint8_t> data;  // row-major, interleaved bands
  const uint8_t* at(int x, int y) const { return data.data() + (static_cast<size_t>(y) * width + x) * bands; }
};
// Decodes any image bytes (fails the test when it cannot).
DecodedPixels DecodePixels(const std::vector<uint8_t>& bytes);

// A lanczos request frame over the given images.
std::vector<uint8_t> LanczosFrame(uint64_t request_id, const std::string& scale,
                                  const std::vector<std::vector<uint8_t>>& images, int32_t gpu_id = -1);

}  // namespace tessera::test
