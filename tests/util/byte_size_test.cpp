#include "util/byte_size.h"

#include <gtest/gtest.h>

#include "util/duration_text.h"

namespace tessera {
namespace {

TEST(ByteSizeTest, ParsesBinaryAndDecimalUnits) {
  EXPECT_EQ(*ParseByteSize("1000"), 1000u);
  EXPECT_EQ(*ParseByteSize("64k"), 65536u);
  EXPECT_EQ(*ParseByteSize("512MiB"), 512ull << 20);
  EXPECT_EQ(*ParseByteSize("1.5G"), 3ull << 29);
  EXPECT_EQ(*ParseByteSize("2GB"), 2000000000ull);
}

TEST(ByteSizeTest, RejectsNonsenseWithAHint) {
  auto r = ParseByteSize("lots");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalid);
  EXPECT_NE(r.status().message().find("MiB"), std::string::npos);
  EXPECT_FALSE(ParseByteSize("12parsecs").ok());
  EXPECT_FALSE(ParseByteSize("-5").ok());
}

TEST(ByteSizeTest, FormatsReadably) {
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(3ull << 20), "3.0 MiB");
  EXPECT_EQ(FormatBytes(5ull << 30), "5.0 GiB");
}

TEST(DurationTextTest, ParsesUnits) {
  EXPECT_EQ(ParseDuration("500ms")->count(), 500);
  EXPECT_EQ(ParseDuration("30s")->count(), 30000);
  EXPECT_EQ(ParseDuration("2")->count(), 2000);
  EXPECT_EQ(ParseDuration("1.5m")->count(), 90000);
  EXPECT_FALSE(ParseDuration("soon").ok());
  EXPECT_FALSE(ParseDuration("5 days").ok());
}

}  // namespace
}  // namespace tessera
