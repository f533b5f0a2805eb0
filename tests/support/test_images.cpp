#include "test_images.h"

#include <gtest/gtest.h>
#include <vips/vips.h>

#include <algorithm>

#include "imaging/vips_runtime.h"

namespace tessera::test {
namespace {

std::vector<uint8_t> SaveToPng(VipsImage* image) {
  void* buf = nullptr;
  size_t len = 0;
  if (vips_pngsave_buffer(image, &buf, &len, "compression", 1, nullptr) != 0) {
    ADD_FAILURE() << "pngsave failed: " << vips_error_buffer();
    return {};
  }
  std::vector<uint8_t> bytes(static_cast<uint8_t*>(buf), static_cast<uint8_t*>(buf) + len);
  g_free(buf);
  return bytes;
}

uint32_t Crc32(const uint8_t* data, size_t n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void StoreBe32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

}  // namespace

void InitImagingForTests() {
  Status s = imaging::InitImaging({});
  ASSERT_TRUE(s.ok()) << s.ToString();
}

std::vector<uint8_t> SolidPng(int width, int height, std::vector<uint8_t> colour) {
  InitImagingForTests();
  std::vector<double> ink(colour.begin(), colour.end());
  VipsImage* black = nullptr;
  VipsImage* filled = nullptr;
  VipsImage* typed = nullptr;
  EXPECT_EQ(vips_black(&black, width, height, "bands", static_cast<int>(colour.size()), nullptr), 0);
  EXPECT_EQ(vips_linear(black, &filled, std::vector<double>(colour.size(), 0.0).data(), ink.data(),
                        static_cast<int>(colour.size()), nullptr),
            0);
  EXPECT_EQ(vips_cast_uchar(filled, &typed, nullptr), 0);
  VipsInterpretation kind = colour.size() >= 3 ? VIPS_INTERPRETATION_sRGB : VIPS_INTERPRETATION_B_W;
  VipsImage* tagged = nullptr;
  EXPECT_EQ(vips_copy(typed, &tagged, "interpretation", kind, nullptr), 0);
  std::vector<uint8_t> bytes = SaveToPng(tagged);
  for (VipsImage* i : {black, filled, typed, tagged}) g_object_unref(i);
  return bytes;
}

std::vector<uint8_t> GradientPng(int width, int height, int bands, int bits) {
  InitImagingForTests();
  VipsImage* xyz = nullptr;
  VipsImage* x = nullptr;
  VipsImage* scaled = nullptr;
  VipsImage* typed = nullptr;
  VipsImage* tagged = nullptr;
  EXPECT_EQ(vips_xyz(&xyz, width, height, nullptr), 0);
  EXPECT_EQ(vips_extract_band(xyz, &x, 0, nullptr), 0);
  const double max = bits == 16 ? 65535.0 : 255.0;
  const double a = max / std::max(1, width - 1);
  const double b = 0;
  EXPECT_EQ(vips_linear(x, &scaled, &a, &b, 1, nullptr), 0);
  std::vector<VipsImage*> planes(static_cast<size_t>(bands), scaled);
  VipsImage* joined = nullptr;
  EXPECT_EQ(vips_bandjoin(planes.data(), &joined, bands, nullptr), 0);
  EXPECT_EQ(bits == 16 ? vips_cast_ushort(joined, &typed, nullptr) : vips_cast_uchar(joined, &typed, nullptr), 0);
  VipsInterpretation kind = bands >= 3 ? (bits == 16 ? VIPS_INTERPRETATION_RGB16 : VIPS_INTERPRETATION_sRGB)
                                       : (bits == 16 ? VIPS_INTERPRETATION_GREY16 : VIPS_INTERPRETATION_B_W);
  EXPECT_EQ(vips_copy(typed, &tagged, "interpretation", kind, nullptr), 0);
  std::vector<uint8_t> bytes = SaveToPng(tagged);
  for (VipsImage* i : {xyz, x, scaled, joined, typed, tagged}) g_object_unref(i);
  return bytes;
}

std::vector<uint8_t> TexturedPng(int width, int height) {
  InitImagingForTests();
  VipsImage* noise = nullptr;
  VipsImage* ramp = nullptr;
  VipsImage* sum = nullptr;
  VipsImage* rgb = nullptr;
  VipsImage* typed = nullptr;
  VipsImage* tagged = nullptr;
  EXPECT_EQ(vips_gaussnoise(&noise, width, height, "sigma", 40.0, "mean", 0.0, "seed", 7, nullptr), 0);
  EXPECT_EQ(vips_xyz(&ramp, width, height, nullptr), 0);
  VipsImage* ramp_x = nullptr;
  EXPECT_EQ(vips_extract_band(ramp, &ramp_x, 0, nullptr), 0);
  EXPECT_EQ(vips_add(noise, ramp_x, &sum, nullptr), 0);
  VipsImage* bands[3] = {sum, sum, sum};
  EXPECT_EQ(vips_bandjoin(bands, &rgb, 3, nullptr), 0);
  EXPECT_EQ(vips_cast_uchar(rgb, &typed, nullptr), 0);
  EXPECT_EQ(vips_copy(typed, &tagged, "interpretation", VIPS_INTERPRETATION_sRGB, nullptr), 0);
  std::vector<uint8_t> bytes = SaveToPng(tagged);
  for (VipsImage* i : {noise, ramp, ramp_x, sum, rgb, typed, tagged}) g_object_unref(i);
  return bytes;
}

std::vector<uint8_t> PngClaimingSize(uint32_t width, uint32_t height) {
  std::vector<uint8_t> png = SolidPng(8, 8, {0, 0, 0});
  // Signature (8) + IHDR length (4) + "IHDR" (4), then width and height; the
  // chunk CRC covers type and data (17 bytes) and follows them.
  constexpr size_t kIhdrType = 12;
  StoreBe32(png.data() + 16, width);
  StoreBe32(png.data() + 20, height);
  StoreBe32(png.data() + 29, Crc32(png.data() + kIhdrType, 17));
  return png;
}

DecodedPixels DecodePixels(const std::vector<uint8_t>& bytes) {
  InitImagingForTests();
  DecodedPixels out;
  VipsImage* image = vips_image_new_from_buffer(bytes.data(), bytes.size(), "", nullptr);
  if (image == nullptr) {
    ADD_FAILURE() << "cannot decode output: " << vips_error_buffer();
    vips_error_clear();
    return out;
  }
  size_t size = 0;
  void* mem = vips_image_write_to_memory(image, &size);
  out.width = vips_image_get_width(image);
  out.height = vips_image_get_height(image);
  out.bands = vips_image_get_bands(image);
  out.data.assign(static_cast<uint8_t*>(mem), static_cast<uint8_t*>(mem) + size);
  g_free(mem);
  g_object_unref(image);
  return out;
}

std::vector<uint8_t> LanczosFrame(uint64_t request_id, const std::string& scale,
                                  const std::vector<std::vector<uint8_t>>& images, int32_t gpu_id) {
  protocol::RequestFrameSpec spec;
  spec.request_id = request_id;
  spec.engine = static_cast<uint32_t>(protocol::Engine::kLanczos);
  spec.quality = scale;
  spec.gpu_id = gpu_id;
  for (const auto& img : images) spec.images.emplace_back(img);
  return protocol::EncodeRequestFrame(spec);
}

}  // namespace tessera::test
