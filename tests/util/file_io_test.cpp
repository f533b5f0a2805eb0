// Whole-file reads (util/file_io.h): a mapped file shows the file's bytes and
// outlives a rename over its path; a missing file is kNotFound.
#include "util/file_io.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace tessera {
namespace {

class FileIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("tessera-file-io-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  std::filesystem::path dir_;
};

TEST_F(FileIoTest, AMappedFileHasTheFilesBytes) {
  std::vector<uint8_t> bytes(1 << 20);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 31 + 7);
  ASSERT_TRUE(WriteFileAtomically(Path("a"), bytes).ok());
  auto mapped = MappedFile::Open(Path("a"));
  ASSERT_TRUE(mapped.ok()) << mapped.status().ToString();
  EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), mapped->bytes().begin(), mapped->bytes().end()));
}

TEST_F(FileIoTest, AMappedFileKeepsItsBytesWhenAnotherFileIsRenamedOverIt) {
  const std::vector<uint8_t> first(4096, 1);
  const std::vector<uint8_t> second(8192, 2);
  ASSERT_TRUE(WriteFileAtomically(Path("plan"), first).ok());
  auto mapped = MappedFile::Open(Path("plan"));
  ASSERT_TRUE(mapped.ok()) << mapped.status().ToString();
  ASSERT_TRUE(WriteFileAtomically(Path("plan"), second).ok());
  ASSERT_EQ(mapped->bytes().size(), first.size());
  EXPECT_TRUE(std::equal(first.begin(), first.end(), mapped->bytes().begin()));
  MappedFile moved = std::move(mapped).value();
  EXPECT_EQ(moved.bytes().size(), first.size());
}

TEST_F(FileIoTest, EmptyAndMissingFiles) {
  ASSERT_TRUE(WriteFileAtomically(Path("empty"), std::vector<uint8_t>{}).ok());
  auto empty = MappedFile::Open(Path("empty"));
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->bytes().empty());
  auto missing = MappedFile::Open(Path("missing"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace tessera
