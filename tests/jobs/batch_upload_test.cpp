#include "jobs/batch_upload.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

namespace tessera::jobs {
namespace {

namespace fs = std::filesystem;

class BatchUploadWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = fs::temp_directory_path() / ("batch_upload_test_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(data_);
  }
  void TearDown() override { fs::remove_all(data_); }

  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  fs::path data_;
};

TEST_F(BatchUploadWriterTest, ImagesStreamToTheirFilesAndMakeTheBatch) {
  fs::path dir;
  {
  auto writer = BatchUploadWriter::Start(data_.string(), "game-1", "node-a");
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  dir = data_ / "games/game-1/batches" / writer->batch_id();
  EXPECT_TRUE(fs::exists(dir / ".incomplete-node-a"));
  ASSERT_TRUE(writer->BeginPart("model", ""));
  ASSERT_TRUE(writer->Data("lanc", 4));
  ASSERT_TRUE(writer->Data("zos", 3));
  ASSERT_TRUE(writer->BeginPart("files", "../cat photo.png"));
  ASSERT_TRUE(writer->Data("PNG1", 4));
  ASSERT_TRUE(writer->Data("PNG2", 4));
  ASSERT_TRUE(writer->BeginPart("files", "dog.jpg"));
  ASSERT_TRUE(writer->Data("JPG", 3));
  ASSERT_TRUE(writer->Finish());
  EXPECT_EQ(writer->Field("model"), "lanczos");
  EXPECT_EQ(writer->image_count(), 2u);
  EXPECT_EQ(writer->bytes(), 11u);

  NewBatch batch = writer->TakeBatch("{}", ".webp", "http://hook", "127.0.0.1");
  ASSERT_EQ(batch.images.size(), 2u);
  EXPECT_EQ(batch.batch_id, writer->batch_id());
  EXPECT_EQ(batch.game_id, "game-1");
  EXPECT_EQ(batch.results_dir, (dir / "results").string());
  EXPECT_EQ(batch.images[0].original_name, "../cat photo.png");
  EXPECT_EQ(batch.images[0].input_path, (dir / "originals/00000__cat_photo.png").string());
  EXPECT_EQ(batch.images[0].result_name, "00000__cat_photo.webp");  // leading dots dropped
  EXPECT_EQ(Read(batch.images[0].input_path), "PNG1PNG2");
  EXPECT_EQ(Read(batch.images[1].input_path), "JPG");
  EXPECT_EQ(batch.images[1].result_name, "00001_dog.webp");

  writer->Commit();
  EXPECT_FALSE(fs::exists(dir / ".incomplete-node-a"));
  }
  EXPECT_TRUE(fs::exists(dir / "originals"));  // a committed batch keeps its folder
}

TEST_F(BatchUploadWriterTest, AnUploadThatNeverCommitsLeavesNothing) {
  std::string batch_id;
  {
    auto writer = BatchUploadWriter::Start(data_.string(), "g", "n");
    ASSERT_TRUE(writer.ok());
    batch_id = writer->batch_id();
    ASSERT_TRUE(writer->BeginPart("f", "a.png"));
    ASSERT_TRUE(writer->Data("x", 1));
    EXPECT_TRUE(fs::exists(data_ / "games/g/batches" / batch_id / "originals/00000_a.png"));
  }
  EXPECT_FALSE(fs::exists(data_ / "games/g/batches" / batch_id));
}

TEST_F(BatchUploadWriterTest, UnsafeIdsAndOversizedFieldsAreRefused) {
  for (const char* id : {"", "../x", "a/b", "a b"}) {
    auto writer = BatchUploadWriter::Start(data_.string(), id, "n");
    ASSERT_FALSE(writer.ok()) << id;
    EXPECT_EQ(writer.status().code(), StatusCode::kInvalid);
  }
  EXPECT_FALSE(IsSafeBatchId(std::string(65, 'a')));
  auto writer = BatchUploadWriter::Start(data_.string(), "g", "n");
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(writer->BeginPart("webhook", ""));
  const std::string big(4097, 'w');
  EXPECT_FALSE(writer->Data(big.data(), big.size()));
  EXPECT_NE(writer->error().find("longer than 4096"), std::string::npos) << writer->error();
  EXPECT_FALSE(writer->BeginPart("files", "a.png"));  // nothing after an error
  EXPECT_FALSE(writer->Finish());
}

}  // namespace
}  // namespace tessera::jobs
