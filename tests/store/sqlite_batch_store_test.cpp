// SqliteJobStore as the BatchStore (seed 004): batches, their images, and the jobs
// behind them, created and retried atomically.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "store/sqlite_job_store.h"
#include "util/failpoint.h"

namespace tessera::store {
namespace {

namespace fs = std::filesystem;

// A batch with its images and their jobs, as CreateBatch takes them.
struct BatchParts {
  Batch batch;
  std::vector<BatchImage> images;
  std::vector<Job> jobs;
};

// `count` images at positions 0..count-1; ids derive from the batch id.
BatchParts MakeBatch(const std::string& id, int count) {
  BatchParts parts;
  parts.batch.id = id;
  parts.batch.game_id = "game-" + id;
  parts.batch.total_images = count;
  parts.batch.max_retries = 2;
  parts.batch.params_json = R"({"model":"realesrgan-x4plus","scale":4,"format":"png"})";
  parts.batch.webhook_url = "https://example.test/batch?id=" + id;
  parts.batch.created_ms = 1'700'000'000'000;
  for (int i = 0; i < count; ++i) {
    const std::string suffix = "-" + std::to_string(i);
    BatchImage image;
    image.id = id + "-image" + suffix;
    image.batch_id = id;
    image.position = i;
    image.original_name = "photo" + suffix + ".jpg";
    image.input_path = "/data/games/game-" + id + "/batches/" + id + "/in" + suffix + ".jpg";
    image.job_id = id + "-job" + suffix;
    Job job;
    job.id = image.job_id;
    job.kind = JobKind::kUpscale;
    job.status = JobStatus::kQueued;
    job.params_json = parts.batch.params_json;
    job.input_path = image.input_path;
    job.filename = "out" + suffix + ".png";
    job.batch_id = id;
    job.created_ms = parts.batch.created_ms;
    parts.images.push_back(image);
    parts.jobs.push_back(job);
  }
  return parts;
}

// A new queued job for a retry of `image_id`.
BatchStore::ImageRetry MakeRetry(const std::string& batch_id, const std::string& image_id, const std::string& job_id) {
  BatchStore::ImageRetry retry;
  retry.image_id = image_id;
  retry.job.id = job_id;
  retry.job.kind = JobKind::kUpscale;
  retry.job.batch_id = batch_id;
  retry.job.filename = job_id + ".png";
  return retry;
}

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::vector<std::string> ImageIds(const std::vector<BatchImageRow>& rows) {
  std::vector<std::string> ids;
  for (const BatchImageRow& row : rows) ids.push_back(row.image.id);
  return ids;
}

// A fresh database file per test; failpoints disarmed before and after.
class SqliteBatchStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DisarmFailpoints();
    std::string pattern = (fs::temp_directory_path() / "tessera-batch-store-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = (dir_ / "tessera.db").string();
    store_ = OpenStore();
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    DisarmFailpoints();
    store_.reset();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  std::unique_ptr<SqliteJobStore> OpenStore() {
    auto store = SqliteJobStore::Open(path_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  void Create(const BatchParts& parts) {
    auto seqs = store_->CreateBatch(parts.batch, parts.images, parts.jobs);
    ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();
  }

  std::vector<BatchImageRow> List(const std::string& batch_id) {
    auto rows = store_->ListBatchImages(batch_id);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    return rows.ok() ? std::move(rows).value() : std::vector<BatchImageRow>{};
  }

  // Sets a stored job's status (and, for finished ones, its finish time).
  void SetJobStatus(const std::string& job_id, JobStatus status, const std::string& error = "") {
    auto job = store_->Get(job_id);
    ASSERT_TRUE(job.ok()) << job.status().ToString();
    job->status = status;
    job->error = error;
    if (IsFinished(status)) job->finished_ms = 1'700'000'005'000;
    ASSERT_TRUE(store_->Update(*job).ok());
  }

  std::vector<std::string> Unsettled() {
    auto ids = store_->UnsettledBatchIds();
    EXPECT_TRUE(ids.ok()) << ids.status().ToString();
    return ids.ok() ? std::move(ids).value() : std::vector<std::string>{};
  }

  // Runs one statement on the database file directly, outside the store.
  void RawExec(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    EXPECT_EQ(rc, SQLITE_OK) << (error ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
  }

  // The first column of the first row of `sql`, as text, read directly.
  std::string RawQuery(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* statement = nullptr;
    std::string text;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    if (sqlite3_step(statement) == SQLITE_ROW && sqlite3_column_text(statement, 0) != nullptr) {
      text = reinterpret_cast<const char*>(sqlite3_column_text(statement, 0));
    }
    sqlite3_finalize(statement);
    sqlite3_close(db);
    return text;
  }

  // Rows in batches, batch_images and jobs, read from the file: what a crash
  // right now would leave.
  std::string RowCounts() {
    return RawQuery(
        "SELECT (SELECT COUNT(*) FROM batches) || '/' || (SELECT COUNT(*) FROM batch_images) || '/' || "
        "(SELECT COUNT(*) FROM jobs)");
  }

  fs::path dir_;
  std::string path_;
  std::unique_ptr<SqliteJobStore> store_;
};

// --- Jobs carry their batch ---------------------------------------------------

TEST_F(SqliteBatchStoreTest, AJobsBatchIdRoundTripsThroughInsertGetUpdateAndList) {
  Job job;
  job.id = "job-1";
  job.kind = JobKind::kUpscale;
  job.batch_id = "batch-a";
  ASSERT_TRUE(store_->Insert(job).ok());
  Job plain;
  plain.id = "job-2";
  ASSERT_TRUE(store_->Insert(plain).ok());

  auto read = store_->Get("job-1");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->batch_id, "batch-a");
  EXPECT_EQ(store_->Get("job-2")->batch_id, "");

  read->batch_id = "batch-b";
  ASSERT_TRUE(store_->Update(*read).ok());
  auto listed = store_->List({});
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].batch_id, "batch-b");
  EXPECT_EQ((*listed)[1].batch_id, "");
}

// --- CreateBatch and reading it back ------------------------------------------

TEST_F(SqliteBatchStoreTest, ACreatedBatchReadsBackWithEveryFieldEvenAfterReopening) {
  BatchParts parts = MakeBatch("b1", 2);
  parts.batch.game_id = "game \"quoted\" ünïcödé";
  parts.batch.notified_ms = 0;
  Create(parts);

  for (int pass = 0; pass < 2; ++pass) {
    auto batch = store_->GetBatch("b1");
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    EXPECT_EQ(batch->id, "b1");
    EXPECT_EQ(batch->game_id, parts.batch.game_id);
    EXPECT_EQ(batch->total_images, 2);
    EXPECT_EQ(batch->max_retries, 2);
    EXPECT_EQ(batch->params_json, parts.batch.params_json);
    EXPECT_EQ(batch->webhook_url, parts.batch.webhook_url);
    EXPECT_EQ(batch->created_ms, parts.batch.created_ms);
    EXPECT_EQ(batch->notified_ms, 0);
    store_ = OpenStore();
    ASSERT_NE(store_, nullptr);
  }
  auto missing = store_->GetBatch("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST_F(SqliteBatchStoreTest, CreateBatchInsertsTheJobsAndReturnsTheirSeqsInOrder) {
  Job before;
  before.id = "earlier";
  auto before_seq = store_->Insert(before);
  ASSERT_TRUE(before_seq.ok());

  BatchParts parts = MakeBatch("b1", 3);
  auto seqs = store_->CreateBatch(parts.batch, parts.images, parts.jobs);
  ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();
  ASSERT_EQ(seqs->size(), 3u);
  EXPECT_GT((*seqs)[0], *before_seq);
  EXPECT_LT((*seqs)[0], (*seqs)[1]);
  EXPECT_LT((*seqs)[1], (*seqs)[2]);
  for (size_t i = 0; i < 3; ++i) {
    auto job = store_->Get(parts.jobs[i].id);
    ASSERT_TRUE(job.ok()) << job.status().ToString();
    EXPECT_EQ(job->seq, (*seqs)[i]);
    EXPECT_EQ(job->batch_id, "b1");
    EXPECT_EQ(job->status, JobStatus::kQueued);
    EXPECT_EQ(job->input_path, parts.images[i].input_path);
  }
}

TEST_F(SqliteBatchStoreTest, ImagesListInUploadOrderWithTheirJobsJoined) {
  BatchParts parts = MakeBatch("b1", 4);
  // Handed over out of order: the listing follows positions, not insertion.
  std::swap(parts.images[0], parts.images[3]);
  std::swap(parts.jobs[0], parts.jobs[3]);
  parts.images[1].attempts = 2;
  parts.images[2].retry_at_ms = 1'700'000'009'000;
  Create(parts);
  Create(MakeBatch("other", 2));  // not listed with b1

  auto success = store_->Get("b1-job-1");
  ASSERT_TRUE(success.ok());
  success->status = JobStatus::kSuccess;
  success->filename = "result-1.png";
  success->started_ms = 1'700'000'001'000;
  success->finished_ms = 1'700'000'002'500;
  ASSERT_TRUE(store_->Update(*success).ok());
  SetJobStatus("b1-job-2", JobStatus::kError, "bad image: not a PNG or JPEG");
  SetJobStatus("b1-job-3", JobStatus::kRunning);

  std::vector<BatchImageRow> rows = List("b1");
  ASSERT_EQ(ImageIds(rows), (std::vector<std::string>{"b1-image-0", "b1-image-1", "b1-image-2", "b1-image-3"}));

  EXPECT_EQ(rows[0].image.batch_id, "b1");
  EXPECT_EQ(rows[0].image.position, 0);
  EXPECT_EQ(rows[0].image.original_name, "photo-0.jpg");
  EXPECT_EQ(rows[0].image.input_path, parts.images[3].input_path);
  EXPECT_EQ(rows[0].image.job_id, "b1-job-0");
  EXPECT_EQ(rows[0].image.attempts, 1);
  EXPECT_EQ(rows[0].image.retry_at_ms, 0);
  EXPECT_EQ(rows[0].job_status, JobStatus::kQueued);
  EXPECT_EQ(rows[0].job_error, "");
  EXPECT_EQ(rows[0].result_filename, "out-0.png");

  EXPECT_EQ(rows[1].image.attempts, 2);
  EXPECT_EQ(rows[1].job_status, JobStatus::kSuccess);
  EXPECT_EQ(rows[1].result_filename, "result-1.png");
  EXPECT_EQ(rows[1].job_started_ms, 1'700'000'001'000);
  EXPECT_EQ(rows[1].job_finished_ms, 1'700'000'002'500);

  EXPECT_EQ(rows[2].image.retry_at_ms, 1'700'000'009'000);
  EXPECT_EQ(rows[2].job_status, JobStatus::kError);
  EXPECT_EQ(rows[2].job_error, "bad image: not a PNG or JPEG");
  EXPECT_EQ(rows[2].job_finished_ms, 1'700'000'005'000);

  EXPECT_EQ(rows[3].job_status, JobStatus::kRunning);
}

TEST_F(SqliteBatchStoreTest, AnEmptyBatchListsNoImagesAndAnUnknownOneIsNotFound) {
  Create(MakeBatch("empty", 0));
  auto rows = store_->ListBatchImages("empty");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_TRUE(rows->empty());

  auto missing = store_->ListBatchImages("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST_F(SqliteBatchStoreTest, AnImageWhoseJobWasDeletedReadsAsFailedAndSettled) {
  Create(MakeBatch("b1", 2));
  SetJobStatus("b1-job-0", JobStatus::kSuccess);
  auto deleted = store_->Delete({"b1-job-0"});
  ASSERT_TRUE(deleted.ok());
  ASSERT_EQ(*deleted, 1);

  std::vector<BatchImageRow> rows = List("b1");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].image.job_id, "b1-job-0");
  EXPECT_EQ(rows[0].job_status, JobStatus::kError);
  EXPECT_TRUE(Contains(rows[0].job_error, "b1-job-0")) << rows[0].job_error;
  EXPECT_TRUE(Contains(rows[0].job_error, "deleted")) << rows[0].job_error;
  EXPECT_EQ(rows[1].job_status, JobStatus::kQueued);

  SetJobStatus("b1-job-1", JobStatus::kSuccess);
  EXPECT_TRUE(Unsettled().empty());
}

// --- CreateBatch is all or nothing --------------------------------------------

TEST_F(SqliteBatchStoreTest, AFailureBeforeCommitLeavesNoBatchNoImageAndNoJob) {
  BatchParts parts = MakeBatch("b1", 3);
  ASSERT_TRUE(ArmFailpoints("store.create_batch").ok());
  auto seqs = store_->CreateBatch(parts.batch, parts.images, parts.jobs);
  ASSERT_FALSE(seqs.ok());
  EXPECT_EQ(seqs.status().code(), StatusCode::kIo);
  EXPECT_TRUE(Contains(seqs.status().message(), "injected failure")) << seqs.status().message();
  EXPECT_TRUE(Contains(seqs.status().message(), "b1")) << seqs.status().message();

  EXPECT_EQ(RowCounts(), "0/0/0");
  EXPECT_EQ(store_->GetBatch("b1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Get("b1-job-0").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ImageForJob("b1-job-0").status().code(), StatusCode::kNotFound);

  // Disarmed, the very same batch goes in: nothing of the failed try was left to
  // collide with.
  DisarmFailpoints();
  Create(parts);
  EXPECT_EQ(RowCounts(), "1/3/3");
}

TEST_F(SqliteBatchStoreTest, AFailureOfOneCreateLeavesEarlierBatchesWhole) {
  Create(MakeBatch("first", 2));
  ASSERT_TRUE(ArmFailpoints("store.create_batch@2").ok());
  Create(MakeBatch("second", 2));  // the failpoint's first hit: passes
  BatchParts third = MakeBatch("third", 2);
  auto failed = store_->CreateBatch(third.batch, third.images, third.jobs);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kIo);

  EXPECT_EQ(RowCounts(), "2/4/4");
  EXPECT_EQ(List("first").size(), 2u);
  EXPECT_EQ(List("second").size(), 2u);
  EXPECT_EQ(store_->GetBatch("third").status().code(), StatusCode::kNotFound);
  // @2 fired once; the third hit passes.
  Create(third);
  EXPECT_EQ(RowCounts(), "3/6/6");
}

TEST_F(SqliteBatchStoreTest, ADuplicateImageIdWritesNothing) {
  BatchParts parts = MakeBatch("b1", 3);
  parts.images[2].id = parts.images[0].id;
  auto seqs = store_->CreateBatch(parts.batch, parts.images, parts.jobs);
  ASSERT_FALSE(seqs.ok());
  EXPECT_EQ(seqs.status().code(), StatusCode::kInvalid);
  EXPECT_TRUE(Contains(seqs.status().message(), parts.images[0].id)) << seqs.status().message();
  EXPECT_EQ(RowCounts(), "0/0/0");
  // The store's own connection sees nothing either, and takes the batch once the
  // ids are fixed.
  EXPECT_EQ(store_->GetBatch("b1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Get("b1-job-0").status().code(), StatusCode::kNotFound);
  parts.images[2].id = "b1-image-2";
  Create(parts);
  EXPECT_EQ(RowCounts(), "1/3/3");
}

TEST_F(SqliteBatchStoreTest, AnImageIdOfAnotherBatchWritesNothingAndLeavesThatBatchAlone) {
  Create(MakeBatch("first", 2));
  BatchParts second = MakeBatch("second", 2);
  second.images[1].id = "first-image-0";
  auto seqs = store_->CreateBatch(second.batch, second.images, second.jobs);
  ASSERT_FALSE(seqs.ok());
  EXPECT_EQ(seqs.status().code(), StatusCode::kInvalid);
  EXPECT_EQ(RowCounts(), "1/2/2");
  EXPECT_EQ(store_->GetBatch("second").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Get("second-job-0").status().code(), StatusCode::kNotFound);
  std::vector<BatchImageRow> rows = List("first");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].image.job_id, "first-job-0");
  EXPECT_EQ(rows[0].image.batch_id, "first");
}

TEST_F(SqliteBatchStoreTest, AnExistingJobIdOrBatchIdWritesNothing) {
  Job existing;
  existing.id = "b1-job-2";
  ASSERT_TRUE(store_->Insert(existing).ok());
  BatchParts parts = MakeBatch("b1", 3);
  auto seqs = store_->CreateBatch(parts.batch, parts.images, parts.jobs);
  ASSERT_FALSE(seqs.ok());
  EXPECT_EQ(seqs.status().code(), StatusCode::kInvalid);
  EXPECT_TRUE(Contains(seqs.status().message(), "b1-job-2")) << seqs.status().message();
  EXPECT_EQ(RowCounts(), "0/0/1");

  Create(MakeBatch("b2", 1));
  BatchParts again = MakeBatch("b2", 1);
  again.images[0].id = "fresh-image";
  again.images[0].job_id = again.jobs[0].id = "fresh-job";
  auto duplicate = store_->CreateBatch(again.batch, again.images, again.jobs);
  ASSERT_FALSE(duplicate.ok());
  EXPECT_EQ(duplicate.status().code(), StatusCode::kInvalid);
  EXPECT_EQ(RowCounts(), "1/1/2");
}

TEST_F(SqliteBatchStoreTest, InconsistentArgumentsAreRefusedBeforeAnythingIsWritten) {
  auto expect_refused = [&](const BatchParts& parts, const std::string& why) {
    auto seqs = store_->CreateBatch(parts.batch, parts.images, parts.jobs);
    ASSERT_FALSE(seqs.ok()) << why;
    EXPECT_EQ(seqs.status().code(), StatusCode::kInvalid) << why << ": " << seqs.status().ToString();
    EXPECT_EQ(RowCounts(), "0/0/0") << why;
  };
  BatchParts parts = MakeBatch("", 1);
  expect_refused(parts, "empty batch id");
  parts = MakeBatch("b1", 2);
  parts.jobs.pop_back();
  parts.batch.total_images = 2;
  expect_refused(parts, "fewer jobs than images");
  parts = MakeBatch("b1", 2);
  parts.batch.total_images = 3;
  expect_refused(parts, "total_images not the image count");
  parts = MakeBatch("b1", 2);
  parts.images[1].job_id = parts.jobs[0].id;
  expect_refused(parts, "an image naming another image's job");
  parts = MakeBatch("b1", 2);
  parts.images[0].batch_id = "b2";
  expect_refused(parts, "an image of another batch");
  parts = MakeBatch("b1", 2);
  parts.jobs[1].batch_id = "";
  expect_refused(parts, "a job of no batch");
  parts = MakeBatch("b1", 2);
  parts.images[0].id = "";
  expect_refused(parts, "an empty image id");
  parts = MakeBatch("b1", 3);
  parts.images[2].position = 0;
  expect_refused(parts, "two images at one position");
  parts = MakeBatch("b1", 2);
  parts.jobs[1].progress = 2.0;
  expect_refused(parts, "a job's progress outside [0, 1]");
}

// --- RetryImages ----------------------------------------------------------------

TEST_F(SqliteBatchStoreTest, ARetryInsertsANewJobAndPointsTheImageAtIt) {
  BatchParts parts = MakeBatch("b1", 2);
  auto first_seqs = store_->CreateBatch(parts.batch, parts.images, parts.jobs);
  ASSERT_TRUE(first_seqs.ok());
  SetJobStatus("b1-job-0", JobStatus::kError, "worker crashed");
  ASSERT_TRUE(store_->ScheduleImageRetry("b1-image-0", 1'700'000'100'000).ok());

  auto seqs = store_->RetryImages({MakeRetry("b1", "b1-image-0", "b1-job-0-retry1")});
  ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();
  ASSERT_EQ(seqs->size(), 1u);
  EXPECT_GT((*seqs)[0], (*first_seqs)[1]);

  auto job = store_->Get("b1-job-0-retry1");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->seq, (*seqs)[0]);
  EXPECT_EQ(job->status, JobStatus::kQueued);
  EXPECT_EQ(job->batch_id, "b1");

  std::vector<BatchImageRow> rows = List("b1");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].image.job_id, "b1-job-0-retry1");
  EXPECT_EQ(rows[0].image.attempts, 2);
  EXPECT_EQ(rows[0].image.retry_at_ms, 0);
  EXPECT_EQ(rows[0].job_status, JobStatus::kQueued);
  EXPECT_EQ(rows[0].job_error, "");
  EXPECT_EQ(rows[0].result_filename, "b1-job-0-retry1.png");
  // The other image is untouched, and the failed attempt stays as history.
  EXPECT_EQ(rows[1].image.job_id, "b1-job-1");
  EXPECT_EQ(rows[1].image.attempts, 1);
  auto old_job = store_->Get("b1-job-0");
  ASSERT_TRUE(old_job.ok());
  EXPECT_EQ(old_job->error, "worker crashed");
  EXPECT_EQ(store_->NextImageRetryMs().value(), 0);

  // A second retry adds one more.
  ASSERT_TRUE(store_->RetryImages({MakeRetry("b1", "b1-image-0", "b1-job-0-retry2")}).ok());
  EXPECT_EQ(List("b1")[0].image.attempts, 3);
}

TEST_F(SqliteBatchStoreTest, RetryingSeveralImagesAtOnceReturnsTheirSeqsInOrder) {
  Create(MakeBatch("b1", 3));
  auto seqs = store_->RetryImages({MakeRetry("b1", "b1-image-2", "r2"), MakeRetry("b1", "b1-image-0", "r0")});
  ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();
  ASSERT_EQ(seqs->size(), 2u);
  EXPECT_EQ(store_->Get("r2")->seq, (*seqs)[0]);
  EXPECT_EQ(store_->Get("r0")->seq, (*seqs)[1]);
  std::vector<BatchImageRow> rows = List("b1");
  EXPECT_EQ(rows[0].image.job_id, "r0");
  EXPECT_EQ(rows[1].image.job_id, "b1-job-1");
  EXPECT_EQ(rows[2].image.job_id, "r2");

  auto none = store_->RetryImages({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(SqliteBatchStoreTest, ARetryOfAnUnknownImageWritesNothing) {
  Create(MakeBatch("b1", 2));
  ASSERT_TRUE(store_->ScheduleImageRetry("b1-image-0", 5'000).ok());
  auto seqs = store_->RetryImages({MakeRetry("b1", "b1-image-0", "new-0"), MakeRetry("b1", "no-such-image", "new-1")});
  ASSERT_FALSE(seqs.ok());
  EXPECT_EQ(seqs.status().code(), StatusCode::kInvalid);
  EXPECT_TRUE(Contains(seqs.status().message(), "no-such-image")) << seqs.status().message();

  // The first pair, written before the unknown image was found, was rolled back.
  EXPECT_EQ(store_->Get("new-0").status().code(), StatusCode::kNotFound);
  std::vector<BatchImageRow> rows = List("b1");
  EXPECT_EQ(rows[0].image.job_id, "b1-job-0");
  EXPECT_EQ(rows[0].image.attempts, 1);
  EXPECT_EQ(rows[0].image.retry_at_ms, 5'000);
  EXPECT_EQ(RowCounts(), "1/2/2");
}

TEST_F(SqliteBatchStoreTest, ARetryWhoseJobNamesAnotherBatchOrReusesAJobIdWritesNothing) {
  Create(MakeBatch("b1", 2));
  auto wrong_batch = store_->RetryImages({MakeRetry("b2", "b1-image-0", "new-0")});
  ASSERT_FALSE(wrong_batch.ok());
  EXPECT_EQ(wrong_batch.status().code(), StatusCode::kInvalid);
  auto reused =
      store_->RetryImages({MakeRetry("b1", "b1-image-0", "new-0"), MakeRetry("b1", "b1-image-1", "b1-job-0")});
  ASSERT_FALSE(reused.ok());
  EXPECT_EQ(reused.status().code(), StatusCode::kInvalid);
  EXPECT_EQ(RowCounts(), "1/2/2");
  EXPECT_EQ(List("b1")[0].image.job_id, "b1-job-0");
}

TEST_F(SqliteBatchStoreTest, AFailureBeforeTheRetryCommitsWritesNothing) {
  Create(MakeBatch("b1", 2));
  SetJobStatus("b1-job-0", JobStatus::kError, "bad image");
  SetJobStatus("b1-job-1", JobStatus::kError, "bad image");
  ASSERT_TRUE(store_->ScheduleImageRetry("b1-image-1", 7'000).ok());

  ASSERT_TRUE(ArmFailpoints("store.retry_images").ok());
  auto seqs = store_->RetryImages({MakeRetry("b1", "b1-image-0", "new-0"), MakeRetry("b1", "b1-image-1", "new-1")});
  ASSERT_FALSE(seqs.ok());
  EXPECT_EQ(seqs.status().code(), StatusCode::kIo);
  EXPECT_TRUE(Contains(seqs.status().message(), "injected failure")) << seqs.status().message();

  EXPECT_EQ(RowCounts(), "1/2/2");
  std::vector<BatchImageRow> rows = List("b1");
  ASSERT_EQ(rows.size(), 2u);
  for (const BatchImageRow& row : rows) {
    EXPECT_EQ(row.image.attempts, 1) << row.image.id;
    EXPECT_EQ(row.job_status, JobStatus::kError) << row.image.id;
  }
  EXPECT_EQ(rows[0].image.job_id, "b1-job-0");
  EXPECT_EQ(rows[1].image.job_id, "b1-job-1");
  EXPECT_EQ(rows[1].image.retry_at_ms, 7'000);

  DisarmFailpoints();
  ASSERT_TRUE(
      store_->RetryImages({MakeRetry("b1", "b1-image-0", "new-0"), MakeRetry("b1", "b1-image-1", "new-1")}).ok());
  EXPECT_EQ(RowCounts(), "1/2/4");
}

// --- Scheduled retries -------------------------------------------------------------

TEST_F(SqliteBatchStoreTest, ScheduledRetriesComeDueInTimeOrder) {
  EXPECT_EQ(store_->NextImageRetryMs().value(), 0);
  Create(MakeBatch("b1", 3));
  Create(MakeBatch("b2", 2));
  ASSERT_TRUE(store_->ScheduleImageRetry("b1-image-0", 3'000).ok());
  ASSERT_TRUE(store_->ScheduleImageRetry("b2-image-1", 1'000).ok());
  ASSERT_TRUE(store_->ScheduleImageRetry("b1-image-2", 2'000).ok());
  ASSERT_TRUE(store_->ScheduleImageRetry("b2-image-0", 2'000).ok());  // a tie: created after b1's

  EXPECT_EQ(store_->NextImageRetryMs().value(), 1'000);
  auto due = [&](int64_t now) {
    auto rows = store_->ImagesDueForRetry(now);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    return rows.ok() ? ImageIds(*rows) : std::vector<std::string>{};
  };
  EXPECT_EQ(due(999), (std::vector<std::string>{}));
  EXPECT_EQ(due(1'000), (std::vector<std::string>{"b2-image-1"}));
  EXPECT_EQ(due(2'999), (std::vector<std::string>{"b2-image-1", "b1-image-2", "b2-image-0"}));
  EXPECT_EQ(due(1'000'000), (std::vector<std::string>{"b2-image-1", "b1-image-2", "b2-image-0", "b1-image-0"}));

  // Rows come with their jobs.
  SetJobStatus("b2-job-1", JobStatus::kError, "timed out");
  auto rows = store_->ImagesDueForRetry(1'000);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].image.batch_id, "b2");
  EXPECT_EQ((*rows)[0].image.retry_at_ms, 1'000);
  EXPECT_EQ((*rows)[0].job_status, JobStatus::kError);
  EXPECT_EQ((*rows)[0].job_error, "timed out");

  // 0 clears.
  ASSERT_TRUE(store_->ScheduleImageRetry("b2-image-1", 0).ok());
  EXPECT_EQ(store_->NextImageRetryMs().value(), 2'000);
  EXPECT_EQ(due(1'500), (std::vector<std::string>{}));
  EXPECT_EQ(List("b2")[1].image.retry_at_ms, 0);
}

TEST_F(SqliteBatchStoreTest, SchedulingARetryOfAnUnknownImageOrAtANegativeTimeFails) {
  Create(MakeBatch("b1", 1));
  EXPECT_EQ(store_->ScheduleImageRetry("no-such-image", 1'000).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ScheduleImageRetry("b1-image-0", -1).code(), StatusCode::kInvalid);
  EXPECT_EQ(store_->NextImageRetryMs().value(), 0);
}

// --- ImageForJob -------------------------------------------------------------------

TEST_F(SqliteBatchStoreTest, ImageForJobFindsTheImageOfItsCurrentJobOnly) {
  Create(MakeBatch("b1", 2));
  Job plain;
  plain.id = "not-a-batch-job";
  ASSERT_TRUE(store_->Insert(plain).ok());
  SetJobStatus("b1-job-1", JobStatus::kError, "bad image");

  auto row = store_->ImageForJob("b1-job-1");
  ASSERT_TRUE(row.ok()) << row.status().ToString();
  EXPECT_EQ(row->image.id, "b1-image-1");
  EXPECT_EQ(row->image.batch_id, "b1");
  EXPECT_EQ(row->image.position, 1);
  EXPECT_EQ(row->job_status, JobStatus::kError);
  EXPECT_EQ(row->job_error, "bad image");

  EXPECT_EQ(store_->ImageForJob("not-a-batch-job").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ImageForJob("no-such-job").status().code(), StatusCode::kNotFound);

  // After a retry the old job is history: no image's current job.
  ASSERT_TRUE(store_->RetryImages({MakeRetry("b1", "b1-image-1", "b1-job-1-retry")}).ok());
  EXPECT_EQ(store_->ImageForJob("b1-job-1").status().code(), StatusCode::kNotFound);
  auto retried = store_->ImageForJob("b1-job-1-retry");
  ASSERT_TRUE(retried.ok()) << retried.status().ToString();
  EXPECT_EQ(retried->image.id, "b1-image-1");
  EXPECT_EQ(retried->image.attempts, 2);
  EXPECT_EQ(retried->job_status, JobStatus::kQueued);
}

// --- Notification and settling ---------------------------------------------------

TEST_F(SqliteBatchStoreTest, ABatchIsMarkedNotifiedOnceEvenAcrossReopening) {
  Create(MakeBatch("b1", 1));
  Create(MakeBatch("b2", 1));
  EXPECT_EQ(store_->UnnotifiedBatchIds().value(), (std::vector<std::string>{"b1", "b2"}));

  auto first = store_->MarkBatchNotified("b1", 1'700'000'050'000);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(*first);
  auto second = store_->MarkBatchNotified("b1", 1'700'000'060'000);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_FALSE(*second);
  EXPECT_EQ(store_->GetBatch("b1")->notified_ms, 1'700'000'050'000);
  EXPECT_EQ(store_->UnnotifiedBatchIds().value(), (std::vector<std::string>{"b2"}));

  store_ = OpenStore();
  ASSERT_NE(store_, nullptr);
  auto after_reopen = store_->MarkBatchNotified("b1", 1'700'000'070'000);
  ASSERT_TRUE(after_reopen.ok()) << after_reopen.status().ToString();
  EXPECT_FALSE(*after_reopen);
  EXPECT_EQ(store_->GetBatch("b1")->notified_ms, 1'700'000'050'000);
  EXPECT_EQ(store_->UnnotifiedBatchIds().value(), (std::vector<std::string>{"b2"}));
  EXPECT_TRUE(store_->MarkBatchNotified("b2", 1'700'000'070'000).value());
  EXPECT_TRUE(store_->UnnotifiedBatchIds().value().empty());
}

TEST_F(SqliteBatchStoreTest, MarkingAnUnknownBatchOrAtTimeZeroFails) {
  Create(MakeBatch("b1", 1));
  EXPECT_EQ(store_->MarkBatchNotified("nope", 1'000).status().code(), StatusCode::kNotFound);
  // 0 is "not yet": accepting it would let the batch notify twice.
  EXPECT_EQ(store_->MarkBatchNotified("b1", 0).status().code(), StatusCode::kInvalid);
  EXPECT_TRUE(store_->MarkBatchNotified("b1", 1'000).value());
}

TEST_F(SqliteBatchStoreTest, UnsettledBatchesAreThoseWithWorkLeftInCreationOrder) {
  Create(MakeBatch("done", 2));
  Create(MakeBatch("queued", 2));
  Create(MakeBatch("running", 2));
  Create(MakeBatch("waiting-retry", 2));
  Create(MakeBatch("failed", 2));
  for (const char* job : {"done-job-0", "done-job-1", "queued-job-1", "running-job-1"}) {
    SetJobStatus(job, JobStatus::kSuccess);
  }
  SetJobStatus("running-job-0", JobStatus::kRunning);
  SetJobStatus("waiting-retry-job-0", JobStatus::kSuccess);
  SetJobStatus("waiting-retry-job-1", JobStatus::kError, "bad image");
  ASSERT_TRUE(store_->ScheduleImageRetry("waiting-retry-image-1", 9'000).ok());
  SetJobStatus("failed-job-0", JobStatus::kError, "bad image");
  SetJobStatus("failed-job-1", JobStatus::kCanceled, "canceled by the client");

  EXPECT_EQ(Unsettled(), (std::vector<std::string>{"queued", "running", "waiting-retry"}));

  // Settling each in turn removes it.
  SetJobStatus("queued-job-0", JobStatus::kSuccess);
  EXPECT_EQ(Unsettled(), (std::vector<std::string>{"running", "waiting-retry"}));
  SetJobStatus("running-job-0", JobStatus::kError, "worker crashed");
  EXPECT_EQ(Unsettled(), (std::vector<std::string>{"waiting-retry"}));
  // The retry runs: its new queued job keeps the batch unsettled.
  ASSERT_TRUE(store_->RetryImages({MakeRetry("waiting-retry", "waiting-retry-image-1", "wr-retry")}).ok());
  EXPECT_EQ(Unsettled(), (std::vector<std::string>{"waiting-retry"}));
  SetJobStatus("wr-retry", JobStatus::kSuccess);
  EXPECT_TRUE(Unsettled().empty());
  // A plain queued job outside any batch settles nothing and unsettles nothing.
  Job plain;
  plain.id = "plain";
  ASSERT_TRUE(store_->Insert(plain).ok());
  EXPECT_TRUE(Unsettled().empty());
}

// --- Migration ---------------------------------------------------------------------

// Schema version 1 exactly as released (kMigrations[0] in sqlite_job_store.cpp),
// with its schema_migrations row: a database written by the build before batches.
constexpr const char* kVersion1Schema = R"sql(
CREATE TABLE schema_migrations(version INTEGER PRIMARY KEY, applied_ms INTEGER);
CREATE TABLE jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: never reused, even after deletes
  id TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  prompt TEXT NOT NULL DEFAULT '',
  params_json TEXT NOT NULL DEFAULT '{}',
  input_path TEXT NOT NULL DEFAULT '',
  filename TEXT NOT NULL DEFAULT '',
  webhook_url TEXT NOT NULL DEFAULT '',
  client TEXT NOT NULL DEFAULT '',
  lane TEXT NOT NULL DEFAULT '',
  gpu_id INTEGER NOT NULL DEFAULT -1,
  attempts INTEGER NOT NULL DEFAULT 0,
  progress REAL NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL DEFAULT 0,
  started_ms INTEGER NOT NULL DEFAULT 0,
  finished_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_status_seq ON jobs(status, seq);
CREATE INDEX jobs_prompt ON jobs(prompt);
CREATE INDEX jobs_filename ON jobs(filename);
CREATE INDEX jobs_lane_kind_finished ON jobs(lane, kind, status, finished_ms);

CREATE TABLE webhooks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  url TEXT NOT NULL,
  job_id TEXT REFERENCES jobs(id) ON DELETE CASCADE,  -- NULL: every job
  created_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhooks_job_id ON webhooks(job_id);
INSERT INTO schema_migrations(version, applied_ms) VALUES(1, 1700000000000);
)sql";

TEST_F(SqliteBatchStoreTest, AVersion1DatabaseIsMigratedAndKeepsItsJobs) {
  store_.reset();
  fs::remove(path_);
  RawExec(kVersion1Schema);
  RawExec(
      "INSERT INTO jobs(id, kind, status, prompt, filename, lane, attempts, created_ms, started_ms, finished_ms) "
      "VALUES('old-job', 'generate', 'success', 'a lighthouse', 'old.mp4', 'cuda:0', 1, 10, 20, 30)");
  ASSERT_EQ(RawQuery("SELECT MAX(version) FROM schema_migrations"), "1");

  store_ = OpenStore();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(RawQuery("SELECT MAX(version) FROM schema_migrations"),
            std::to_string(SqliteJobStore::LatestSchemaVersion()));
  EXPECT_EQ(RawQuery("SELECT COUNT(*) FROM schema_migrations WHERE version = 2"), "1");
  EXPECT_EQ(RawQuery("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'jobs_batch_id'"), "1");

  auto job = store_->Get("old-job");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->batch_id, "");
  EXPECT_EQ(job->status, JobStatus::kSuccess);
  EXPECT_EQ(job->prompt, "a lighthouse");
  EXPECT_EQ(job->filename, "old.mp4");
  EXPECT_EQ(job->finished_ms, 30);

  // The new tables work, and seqs continue after the old job's.
  BatchParts parts = MakeBatch("b1", 2);
  auto seqs = store_->CreateBatch(parts.batch, parts.images, parts.jobs);
  ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();
  EXPECT_GT((*seqs)[0], job->seq);
  EXPECT_EQ(List("b1").size(), 2u);
  EXPECT_EQ(Unsettled(), (std::vector<std::string>{"b1"}));

  // Opening again applies nothing twice.
  store_ = OpenStore();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(RawQuery("SELECT COUNT(*) FROM schema_migrations"), std::to_string(SqliteJobStore::LatestSchemaVersion()));
}

}  // namespace
}  // namespace tessera::store
