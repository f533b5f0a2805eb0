#include "util/byte_order.h"

#include <gtest/gtest.h>

namespace tessera {
namespace {

TEST(ByteOrderTest, StoresAndLoadsLittleEndian) {
  uint8_t b[8];
  StoreLe32(b, 0x42524452);
  EXPECT_EQ(b[0], 0x52);
  EXPECT_EQ(b[1], 0x44);
  EXPECT_EQ(b[2], 0x52);
  EXPECT_EQ(b[3], 0x42);
  EXPECT_EQ(LoadLe32(b), 0x42524452u);
  StoreLe64(b, 0x0102030405060708ull);
  EXPECT_EQ(b[0], 0x08);
  EXPECT_EQ(b[7], 0x01);
  EXPECT_EQ(LoadLe64(b), 0x0102030405060708ull);
  StoreLe16(b, 0xBEEF);
  EXPECT_EQ(LoadLe16(b), 0xBEEF);
}

TEST(ByteCursorTest, FailedReadDoesNotMoveTheCursor) {
  std::vector<uint8_t> bytes = {1, 0, 0, 0, 9, 9};
  ByteCursor c(bytes);
  uint32_t v = 0;
  ASSERT_TRUE(c.ReadU32(&v));
  EXPECT_EQ(v, 1u);
  uint32_t w = 0;
  EXPECT_FALSE(c.ReadU32(&w));
  EXPECT_EQ(c.position(), 4u);
  std::span<const uint8_t> rest;
  EXPECT_FALSE(c.ReadBytes(3, &rest));
  ASSERT_TRUE(c.ReadBytes(2, &rest));
  EXPECT_EQ(rest[0], 9);
  EXPECT_EQ(c.remaining(), 0u);
}

TEST(ByteWriterTest, WritesFieldsInOrder) {
  std::vector<uint8_t> out;
  ByteWriter w(&out);
  w.U16(2);
  w.I32(-1);
  w.Bytes(std::string_view("ab"));
  EXPECT_EQ(out, (std::vector<uint8_t>{2, 0, 0xFF, 0xFF, 0xFF, 0xFF, 'a', 'b'}));
}

}  // namespace
}  // namespace tessera
