#include "imaging/image_magic.h"

#include <gtest/gtest.h>

#include <string>

namespace tessera::imaging {
namespace {

std::optional<std::string_view> Sniff(const std::string& bytes) {
  return SniffImageFormat(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

TEST(ImageMagicTest, KnowsTheSignaturesOfTheDecodedFormats) {
  EXPECT_EQ(Sniff(std::string("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16)), "png");
  EXPECT_EQ(Sniff("\xff\xd8\xff\xe0\x00\x10JFIF"), "jpeg");
  EXPECT_EQ(Sniff(std::string("RIFF\x10\0\0\0WEBPVP8 ", 16)), "webp");
  EXPECT_EQ(Sniff("GIF89a\x01\x00"), "gif");
  EXPECT_EQ(Sniff(std::string("\0\0\0\x1c" "ftypavif", 12)), "heif");
}

TEST(ImageMagicTest, RefusesWhatIsNotAnImage) {
  EXPECT_EQ(Sniff("{\"not\": \"an image\"}"), std::nullopt);
  EXPECT_EQ(Sniff("PK\x03\x04zipzipzip"), std::nullopt);
  EXPECT_EQ(Sniff(std::string("RIFF\x10\0\0\0WAVEfmt ", 16)), std::nullopt);  // RIFF, but audio
  EXPECT_EQ(Sniff(""), std::nullopt);
}

}  // namespace
}  // namespace tessera::imaging
