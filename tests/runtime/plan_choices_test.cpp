// runtime/plan_choices: a backend's per-layer choices round-trip beside a plan;
// a file of another key, damaged or cut short is "no choices", never a crash.
#include "runtime/plan_choices.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "util/file_io.h"

namespace tessera::runtime {
namespace {

namespace fs = std::filesystem;

Sha256Digest KeyOf(uint8_t seed) {
  Sha256Digest key{};
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(seed + i);
  return key;
}

class PlanChoicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("plan_choices_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  const std::vector<std::string> choices_ = {"", "cudnn-fwd 1 0", "", "cudnn-bwd-data 4 2", std::string(256, 'x')};
};

TEST_F(PlanChoicesTest, ChoicesRoundTripBesideThePlan) {
  PlanCache cache(dir_.string());
  ASSERT_TRUE(WriteChoices(cache, KeyOf(1), choices_).ok());
  EXPECT_TRUE(fs::exists(cache.PathFor(KeyOf(1)) + ".choices"));
  auto read = ReadChoices(cache, KeyOf(1));
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(*read, choices_);
  EXPECT_FALSE(ReadChoices(cache, KeyOf(2)).has_value()) << "no file for another key";
}

TEST_F(PlanChoicesTest, AFileOfAnotherKeyIsNotTaken) {
  EXPECT_FALSE(DecodeChoices(EncodeChoices(KeyOf(1), choices_), KeyOf(2)).has_value());
}

TEST_F(PlanChoicesTest, AnyDamagedOrMissingByteIsNoChoices) {
  const std::vector<uint8_t> bytes = EncodeChoices(KeyOf(1), choices_);
  ASSERT_TRUE(DecodeChoices(bytes, KeyOf(1)).has_value());
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::vector<uint8_t> flipped = bytes;
    flipped[i] ^= 0x01;
    EXPECT_FALSE(DecodeChoices(flipped, KeyOf(1)).has_value()) << "byte " << i;
  }
  for (size_t length = 0; length < bytes.size(); ++length) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(length));
    EXPECT_FALSE(DecodeChoices(cut, KeyOf(1)).has_value()) << "length " << length;
  }
}

TEST_F(PlanChoicesTest, RandomBytesNeverCrashTheReader) {
  std::mt19937 random(7);
  for (int round = 0; round < 2000; ++round) {
    std::vector<uint8_t> bytes(random() % 200);
    for (uint8_t& b : bytes) b = static_cast<uint8_t>(random());
    if (bytes.size() >= 8 && round % 2 == 0) std::copy(kChoicesMagic, kChoicesMagic + 8, bytes.begin());
    EXPECT_FALSE(DecodeChoices(bytes, KeyOf(1)).has_value());
  }
}

TEST_F(PlanChoicesTest, ACorruptFileIsReadAsNoChoices) {
  PlanCache cache(dir_.string());
  ASSERT_TRUE(WriteChoices(cache, KeyOf(1), choices_).ok());
  const std::string path = cache.PathFor(KeyOf(1)) + ".choices";
  std::ofstream(path, std::ios::binary | std::ios::trunc) << "TSRCHOS";
  EXPECT_FALSE(ReadChoices(cache, KeyOf(1)).has_value());
}

TEST_F(PlanChoicesTest, AChoiceOver256BytesIsRefusedOnWriting) {
  PlanCache cache(dir_.string());
  Status refused = WriteChoices(cache, KeyOf(1), {std::string(257, 'x')});
  EXPECT_EQ(refused.code(), StatusCode::kInvalid);
  EXPECT_FALSE(fs::exists(cache.PathFor(KeyOf(1)) + ".choices"));
}

}  // namespace
}  // namespace tessera::runtime
