#include "jobs/upscale_upload.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

namespace tessera::jobs {
namespace {

namespace fs = std::filesystem;

const std::string kPngHead("\x89PNG\r\n\x1a\n\0\0\0\x0d", 12);

class UpscaleUploadWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("upscale_upload_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  size_t FilesIn(const fs::path& dir) const {
    return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
  }
  static std::string Read(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  fs::path dir_;
};

TEST_F(UpscaleUploadWriterTest, ARawBodyIsStoredWhereTheJobWantsIt) {
  auto writer = UpscaleUploadWriter::Start(dir_.string(), "node-a");
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  ASSERT_EQ(FilesIn(dir_), 1u);
  EXPECT_EQ(fs::directory_iterator(dir_)->path().filename().string().rfind(TempUploadPrefix("node-a"), 0), 0u);
  // In pieces smaller than the signature: it is checked once whole.
  ASSERT_TRUE(writer->ImageData(kPngHead.data(), 5).ok());
  ASSERT_TRUE(writer->ImageData(kPngHead.data() + 5, kPngHead.size() - 5).ok());
  ASSERT_TRUE(writer->ImageData("rest", 4).ok());
  ASSERT_TRUE(writer->Finish().ok());
  EXPECT_EQ(writer->bytes(), kPngHead.size() + 4);
  fs::create_directories(dir_ / "jobs");
  ASSERT_TRUE(writer->StoreAt((dir_ / "jobs/input.png").string()).ok());
  EXPECT_EQ(Read(dir_ / "jobs/input.png"), kPngHead + "rest");
  EXPECT_EQ(FilesIn(dir_), 1u);  // the temporary name is gone
}

TEST_F(UpscaleUploadWriterTest, AnUploadNeverStoredIsRemoved) {
  {
    auto writer = UpscaleUploadWriter::Start(dir_.string(), "node-a");
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE(writer->ImageData(kPngHead.data(), kPngHead.size()).ok());
  }
  EXPECT_EQ(FilesIn(dir_), 0u);
}

TEST_F(UpscaleUploadWriterTest, BytesThatAreNoImageAreRefusedAtTheirSignature) {
  auto writer = UpscaleUploadWriter::Start(dir_.string(), "node-a");
  ASSERT_TRUE(writer.ok());
  std::string json = R"({"image": "not really"})";
  Status refused = writer->ImageData(json.data(), json.size());
  EXPECT_EQ(refused.code(), StatusCode::kBadImage);
  EXPECT_NE(refused.message().find("not an image"), std::string::npos) << refused.message();
}

TEST_F(UpscaleUploadWriterTest, AShortBodyIsCheckedWhenItEnds) {
  auto writer = UpscaleUploadWriter::Start(dir_.string(), "node-a");
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(writer->ImageData("GIF", 3).ok());
  EXPECT_EQ(writer->Finish().code(), StatusCode::kBadImage);
}

TEST_F(UpscaleUploadWriterTest, NoImageIsInvalid) {
  auto writer = UpscaleUploadWriter::Start(dir_.string(), "node-a");
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(writer->BeginPart("model", "").ok());
  ASSERT_TRUE(writer->PartData("lanczos", 7).ok());
  Status none = writer->Finish();
  EXPECT_EQ(none.code(), StatusCode::kInvalid);
  EXPECT_NE(none.message().find("no image"), std::string::npos) << none.message();
}

TEST_F(UpscaleUploadWriterTest, FormFieldsBesideTheImage) {
  auto writer = UpscaleUploadWriter::Start(dir_.string(), "node-a");
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(writer->BeginPart("model", "").ok());
  ASSERT_TRUE(writer->PartData("lanc", 4).ok());
  ASSERT_TRUE(writer->PartData("zos", 3).ok());
  ASSERT_TRUE(writer->BeginPart("upload", "cat.png").ok());
  ASSERT_TRUE(writer->PartData(kPngHead.data(), kPngHead.size()).ok());
  ASSERT_TRUE(writer->BeginPart("format", "").ok());
  ASSERT_TRUE(writer->PartData("webp", 4).ok());
  ASSERT_TRUE(writer->Finish().ok());
  EXPECT_EQ(writer->Field("model"), "lanczos");
  EXPECT_EQ(writer->Field("format"), "webp");
  EXPECT_EQ(writer->Field("scale"), std::nullopt);
  EXPECT_EQ(writer->bytes(), kPngHead.size());
}

TEST_F(UpscaleUploadWriterTest, APartNamedImageWinsOverAnEarlierFileAndLaterFilesAreIgnored) {
  auto writer = UpscaleUploadWriter::Start(dir_.string(), "node-a");
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(writer->BeginPart("attachment", "first.png").ok());
  ASSERT_TRUE(writer->PartData(kPngHead.data(), kPngHead.size()).ok());
  ASSERT_TRUE(writer->PartData("first", 5).ok());
  ASSERT_TRUE(writer->BeginPart("image", "chosen.png").ok());
  ASSERT_TRUE(writer->PartData(kPngHead.data(), kPngHead.size()).ok());
  ASSERT_TRUE(writer->PartData("chosen", 6).ok());
  // A later file, larger than a form field may be: ignored, not refused.
  ASSERT_TRUE(writer->BeginPart("extra", "big.bin").ok());
  std::string big(10000, 'x');
  ASSERT_TRUE(writer->PartData(big.data(), big.size()).ok());
  ASSERT_TRUE(writer->Finish().ok());
  ASSERT_TRUE(writer->StoreAt((dir_ / "input.png").string()).ok());
  EXPECT_EQ(Read(dir_ / "input.png"), kPngHead + "chosen");
  EXPECT_EQ(writer->Field("extra"), std::nullopt);
}

TEST_F(UpscaleUploadWriterTest, AFormFieldLongerThan4KiBIsRefused) {
  auto writer = UpscaleUploadWriter::Start(dir_.string(), "node-a");
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(writer->BeginPart("filename", "").ok());
  std::string long_value(4096, 'a');
  ASSERT_TRUE(writer->PartData(long_value.data(), long_value.size()).ok());
  Status refused = writer->PartData("b", 1);
  EXPECT_EQ(refused.code(), StatusCode::kInvalid);
  EXPECT_NE(refused.message().find("filename"), std::string::npos) << refused.message();
}

TEST_F(UpscaleUploadWriterTest, AFolderThatCannotHoldTheFileIsAnIoError) {
  auto writer = UpscaleUploadWriter::Start((dir_ / "missing").string(), "node-a");
  ASSERT_FALSE(writer.ok());
  EXPECT_EQ(writer.status().code(), StatusCode::kIo);
}

}  // namespace
}  // namespace tessera::jobs
