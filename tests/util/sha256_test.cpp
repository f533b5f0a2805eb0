#include "util/sha256.h"

#include <gtest/gtest.h>

#include <string>

namespace tessera {
namespace {

std::string Repeat(char c, size_t n) { return std::string(n, c); }

// FIPS 180-4 examples (NIST "SHA256.pdf" and the one-million-'a' message).
TEST(Sha256Test, NistShortMessage) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, EmptyMessage) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256Test, Nist448BitMessageNeedsASecondPaddingBlock) {
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256Test, Nist896BitMessage) {
  EXPECT_EQ(Sha256Hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqr"
                      "smnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

TEST(Sha256Test, OneMillionAStreamedInOddChunks) {
  Sha256 h;
  std::string chunk = Repeat('a', 997);
  size_t left = 1000000;
  while (left > 0) {
    size_t n = std::min(left, chunk.size());
    h.Update(std::string_view(chunk).substr(0, n));
    left -= n;
  }
  EXPECT_EQ(ToHex(h.Finish()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, OneMillionAOneShot) {
  EXPECT_EQ(Sha256Hex(Repeat('a', 1000000)), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Lengths around the 56-byte padding limit and the 64-byte block.
TEST(Sha256Test, PaddingBoundaries) {
  EXPECT_EQ(Sha256Hex(Repeat('a', 55)), "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  EXPECT_EQ(Sha256Hex(Repeat('a', 63)), "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34");
  EXPECT_EQ(Sha256Hex(Repeat('a', 64)), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
  EXPECT_EQ(Sha256Hex(Repeat('a', 65)), "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0");
}

TEST(Sha256Test, EverySplitPointGivesTheOneShotDigest) {
  std::string message;
  for (int i = 0; i < 200; ++i) message.push_back(static_cast<char>(i * 7 + 3));
  Sha256Digest expected = Sha256Of(message);
  for (size_t split = 0; split <= message.size(); ++split) {
    Sha256 h;
    h.Update(std::string_view(message).substr(0, split));
    h.Update(std::string_view(message).substr(split));
    ASSERT_EQ(h.Finish(), expected) << "split at " << split;
  }
}

TEST(Sha256Test, FinishResetsForTheNextMessage) {
  Sha256 h;
  h.Update("something else");
  (void)h.Finish();
  h.Update("abc");
  EXPECT_EQ(ToHex(h.Finish()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// RFC 4231 test cases (case 5, a truncated output, is not applicable).
std::string Bytes(std::initializer_list<int> values) {
  std::string s;
  for (int v : values) s.push_back(static_cast<char>(v));
  return s;
}

TEST(HmacSha256Test, Rfc4231Case1) {
  EXPECT_EQ(HmacSha256Hex(Repeat('\x0b', 20), "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(HmacSha256Test, Rfc4231Case2KeyShorterThanOutput) {
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacSha256Test, Rfc4231Case3) {
  EXPECT_EQ(HmacSha256Hex(Repeat('\xaa', 20), Repeat('\xdd', 50)),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
}

TEST(HmacSha256Test, Rfc4231Case4) {
  std::string key;
  for (int i = 1; i <= 25; ++i) key.push_back(static_cast<char>(i));
  EXPECT_EQ(key, Bytes({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25}));
  EXPECT_EQ(HmacSha256Hex(key, Repeat('\xcd', 50)),
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
}

TEST(HmacSha256Test, Rfc4231Case6KeyLongerThanABlockIsHashedFirst) {
  EXPECT_EQ(HmacSha256Hex(Repeat('\xaa', 131), "Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HmacSha256Test, Rfc4231Case7LongKeyAndLongData) {
  EXPECT_EQ(HmacSha256Hex(Repeat('\xaa', 131),
                          "This is a test using a larger than block-size key and a larger than block-size data. The "
                          "key needs to be hashed before being used by the HMAC algorithm."),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

TEST(HmacSha256Test, KeyOfExactlyOneBlockIsUsedAsIs) {
  // 64 bytes is the largest key used without hashing it first (value from Python's hmac).
  EXPECT_EQ(HmacSha256Hex(Repeat('k', 64), "m"), "3b7a8d453e76edb519238a515105a57508d0f169f480ebeee120a9e7803289fa");
}

}  // namespace
}  // namespace tessera
