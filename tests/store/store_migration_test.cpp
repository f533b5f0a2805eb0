// `tessera store migrate` below the command line: a real SQLite store, filled
// through the store interfaces with every kind of row, copied into the test
// cluster's PostgreSQL, read back through the PostgreSQL store and compared
// field by field; then what must be refused (a target with jobs, a file in use,
// a damaged file) and what must be skipped (--merge).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "pg_test_cluster.h"
#include "store/postgres_job_store.h"
#include "store/sqlite_job_store.h"
#include "store/store_migration.h"
#include "store_conformance.h"
#include "util/failpoint.h"

namespace tessera::store::testing {
namespace {

constexpr int64_t kAll = 1'000'000;

class TempFolder {
 public:
  TempFolder() {
    char path[] = "/tmp/tessera-migrate-XXXXXX";
    path_ = ::mkdtemp(path);
  }
  ~TempFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class StoreMigrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto schema = PgTestSchema::Create();
    if (schema.status().code() == StatusCode::kUnsupported) GTEST_SKIP() << schema.status().message();
    ASSERT_TRUE(schema.ok()) << schema.status().ToString();
    schema_ = std::move(schema).value();
    sqlite_path_ = folder_.path() + "/state.db";
  }

  // Every kind of row a server writes, through the interfaces, on the SQLite
  // store at sqlite_path_.
  void FillSqlite() {
    auto opened = SqliteJobStore::Open(sqlite_path_);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    Store& store = **opened;
    int n = 0;
    for (JobStatus status :
         {JobStatus::kSuccess, JobStatus::kError, JobStatus::kCanceled, JobStatus::kRunning, JobStatus::kQueued,
          JobStatus::kQueued}) {
      Job job = FullJob("job-" + std::to_string(++n));
      job.kind = n % 2 == 0 ? JobKind::kGenerate : JobKind::kUpscale;
      job.status = status;
      job.attempts = n;
      job.created_ms += n;
      ASSERT_TRUE(store.Insert(job).ok());
    }
    // A finished job of the batch's and a deleted seq gap: order is by seq, not ids.
    ASSERT_TRUE(store.Insert(MakeJob("job-deleted")).ok());
    ASSERT_TRUE(store.Delete({"job-deleted"}).ok());
    ASSERT_TRUE(store.Insert(MakeJob("job-7", JobKind::kGenerate, JobStatus::kQueued)).ok());

    ASSERT_TRUE(store.AddWebhook({0, "https://example.test/every-job", "", 1'700'000'000'001}).ok());
    ASSERT_TRUE(store.AddWebhook({0, "https://example.test/every-job-too", "", 1'700'000'000'002}).ok());
    ASSERT_TRUE(store.AddWebhook({0, "https://example.test/job-1-only", "job-1", 1'700'000'000'003}).ok());
    for (int attempt = 1; attempt <= 3; ++attempt) {
      WebhookAttemptRecord record{"delivery-1", "job-1", "https://example.test/job-1-only", "job.success", attempt,
                                  attempt == 3, attempt == 3, attempt == 3 ? "" : "HTTP 500", 1'700'000'010'000 + attempt};
      ASSERT_TRUE(store.AddWebhookAttempt(record).ok());
    }
    ASSERT_TRUE(store.AddWebhookAttempt({"delivery-2", "job-3", "https://example.test/every-job", "job.canceled", 1,
                                         true, true, "", 1'700'000'020'000})
                    .ok());

    BatchParts older = MakeBatch("batch-a", 2);
    ASSERT_TRUE(store.CreateBatch(older.batch, older.images, older.jobs).ok());
    BatchParts newer = MakeBatch("batch-b", 3);
    newer.batch.created_ms += 5;
    ASSERT_TRUE(store.CreateBatch(newer.batch, newer.images, newer.jobs).ok());
    // An image retried (attempts 2, a new job), one with a retry scheduled, a
    // batch notified.
    Job failed = older.jobs[0];
    failed.status = JobStatus::kError;
    failed.error = "decoder failed";
    failed.attempts = 1;
    failed.started_ms = 1'700'000'030'000;
    failed.finished_ms = 1'700'000'031'000;
    ASSERT_TRUE(store.Update(failed).ok());
    BatchStore::ImageRetry retry;
    retry.image_id = older.images[0].id;
    retry.job = MakeJob("batch-a-retry", JobKind::kUpscale);
    retry.job.batch_id = "batch-a";
    ASSERT_TRUE(store.RetryImages({retry}).ok());
    ASSERT_TRUE(store.ScheduleImageRetry(newer.images[1].id, 1'700'000'040'000).ok());
    ASSERT_TRUE(store.MarkBatchNotified("batch-a", 1'700'000'050'000).ok());
  }

  Result<ImportCounts> Migrate(bool merge, const std::string& from = "") {
    MigrationOptions options;
    options.from = from.empty() ? sqlite_path_ : from;
    options.to = schema_->url();
    options.merge = merge;
    options.jobs_per_transaction = 3;  // several transactions, even for a few jobs
    progress_.clear();
    return MigrateSqliteToPostgres(options, [this](std::string_view table, const RowCounts& so_far, int64_t total) {
      progress_.push_back(std::string(table) + " " + std::to_string(so_far.copied + so_far.skipped) + "/" +
                          std::to_string(total));
    });
  }

  // Whether the test schema holds a jobs table at all (the migration creates it).
  bool TargetHasTables() {
    auto found = schema_->raw().Exec("look for jobs", "SELECT to_regclass('jobs') IS NOT NULL");
    EXPECT_TRUE(found.ok()) << found.status().ToString();
    return found.ok() && found->Text(0, 0) == "t";
  }

  TempFolder folder_;
  std::string sqlite_path_;
  std::unique_ptr<PgTestSchema> schema_;
  std::vector<std::string> progress_;
};

void ExpectSameImageRows(const std::vector<BatchImageRow>& actual, const std::vector<BatchImageRow>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    const BatchImage& a = actual[i].image;
    const BatchImage& e = expected[i].image;
    EXPECT_EQ(a.id, e.id);
    EXPECT_EQ(a.batch_id, e.batch_id);
    EXPECT_EQ(a.position, e.position);
    EXPECT_EQ(a.original_name, e.original_name);
    EXPECT_EQ(a.input_path, e.input_path);
    EXPECT_EQ(a.job_id, e.job_id);
    EXPECT_EQ(a.attempts, e.attempts);
    EXPECT_EQ(a.retry_at_ms, e.retry_at_ms);
    EXPECT_EQ(actual[i].job_status, expected[i].job_status);
    EXPECT_EQ(actual[i].job_error, expected[i].job_error);
    EXPECT_EQ(actual[i].result_filename, expected[i].result_filename);
  }
}

void ExpectSameBatch(const Batch& actual, const Batch& expected) {
  EXPECT_EQ(actual.id, expected.id);
  EXPECT_EQ(actual.game_id, expected.game_id);
  EXPECT_EQ(actual.total_images, expected.total_images);
  EXPECT_EQ(actual.max_retries, expected.max_retries);
  EXPECT_EQ(actual.params_json, expected.params_json);
  EXPECT_EQ(actual.webhook_url, expected.webhook_url);
  EXPECT_EQ(actual.created_ms, expected.created_ms);
  EXPECT_EQ(actual.notified_ms, expected.notified_ms);
}

void ExpectSameWebhooks(Store& actual, Store& expected, const std::string& job_id) {
  auto a = actual.WebhooksFor(job_id);
  auto e = expected.WebhooksFor(job_id);
  ASSERT_TRUE(a.ok() && e.ok());
  ASSERT_EQ(a->size(), e->size()) << job_id;
  for (size_t i = 0; i < a->size(); ++i) {
    EXPECT_EQ((*a)[i].url, (*e)[i].url);  // ids are the target's own
    EXPECT_EQ((*a)[i].job_id, (*e)[i].job_id);
    EXPECT_EQ((*a)[i].created_ms, (*e)[i].created_ms);
  }
  auto attempts_a = actual.WebhookAttempts(job_id, kAll);
  auto attempts_e = expected.WebhookAttempts(job_id, kAll);
  ASSERT_TRUE(attempts_a.ok() && attempts_e.ok());
  ASSERT_EQ(attempts_a->size(), attempts_e->size()) << job_id;
  for (size_t i = 0; i < attempts_a->size(); ++i) {
    const WebhookAttemptRecord& x = (*attempts_a)[i];
    const WebhookAttemptRecord& y = (*attempts_e)[i];
    EXPECT_EQ(x.delivery_id, y.delivery_id);
    EXPECT_EQ(x.job_id, y.job_id);
    EXPECT_EQ(x.url, y.url);
    EXPECT_EQ(x.event, y.event);
    EXPECT_EQ(x.attempt, y.attempt);
    EXPECT_EQ(x.delivered, y.delivered);
    EXPECT_EQ(x.final, y.final);
    EXPECT_EQ(x.error, y.error);
    EXPECT_EQ(x.at_ms, y.at_ms);
  }
}

// Everything a server reads, through both stores' interfaces.
void ExpectSameStores(Store& actual, Store& expected) {
  auto jobs_a = actual.List({});
  auto jobs_e = expected.List({});
  ASSERT_TRUE(jobs_a.ok() && jobs_e.ok());
  ASSERT_EQ(jobs_a->size(), jobs_e->size());
  for (size_t i = 0; i < jobs_a->size(); ++i) {  // same order: the FIFO holds
    ExpectSameJob((*jobs_a)[i], (*jobs_e)[i]);
    EXPECT_EQ((*jobs_a)[i].batch_id, (*jobs_e)[i].batch_id);
    ExpectSameWebhooks(actual, expected, (*jobs_e)[i].id);
  }
  JobFilter queued;
  queued.statuses = {JobStatus::kQueued};
  auto queue_a = actual.List(queued);
  auto queue_e = expected.List(queued);
  ASSERT_TRUE(queue_a.ok() && queue_e.ok());
  ASSERT_EQ(queue_a->size(), queue_e->size());
  for (size_t i = 0; i < queue_a->size(); ++i) EXPECT_EQ((*queue_a)[i].id, (*queue_e)[i].id);
  EXPECT_EQ(*actual.CountByStatus(), *expected.CountByStatus());
  ExpectSameWebhooks(actual, expected, "");  // the registrations for every job

  auto batches_a = actual.ListBatches("", 0, 100);
  auto batches_e = expected.ListBatches("", 0, 100);
  ASSERT_TRUE(batches_a.ok() && batches_e.ok());
  ASSERT_EQ(batches_a->size(), batches_e->size());
  for (size_t i = 0; i < batches_a->size(); ++i) {  // newest first in both
    ExpectSameBatch((*batches_a)[i], (*batches_e)[i]);
    auto images_a = actual.ListBatchImages((*batches_e)[i].id);
    auto images_e = expected.ListBatchImages((*batches_e)[i].id);
    ASSERT_TRUE(images_a.ok() && images_e.ok());
    ExpectSameImageRows(*images_a, *images_e);
  }
  EXPECT_EQ(*actual.NextImageRetryMs(), *expected.NextImageRetryMs());
  EXPECT_EQ(*actual.UnnotifiedBatchIds(), *expected.UnnotifiedBatchIds());
  EXPECT_EQ(*actual.UnsettledBatchIds(), *expected.UnsettledBatchIds());
  auto due_a = actual.ImagesDueForRetry(1'800'000'000'000);
  auto due_e = expected.ImagesDueForRetry(1'800'000'000'000);
  ASSERT_TRUE(due_a.ok() && due_e.ok());
  ExpectSameImageRows(*due_a, *due_e);
}

TEST_F(StoreMigrationTest, CopiesEveryRowAndFieldAndKeepsTheOrder) {
  FillSqlite();
  auto counts = Migrate(false);
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  // 7 jobs + 5 of the batches + 1 retry; 2 + 1 registrations; 4 attempts.
  EXPECT_EQ(counts->jobs.copied, 13);
  EXPECT_EQ(counts->webhooks.copied, 3);
  EXPECT_EQ(counts->webhook_attempts.copied, 4);
  EXPECT_EQ(counts->batches.copied, 2);
  EXPECT_EQ(counts->batch_images.copied, 5);
  EXPECT_EQ(counts->jobs.skipped + counts->webhooks.skipped + counts->batches.skipped, 0);
  // Progress after each transaction: 13 jobs, 3 per transaction.
  std::vector<std::string> job_lines;
  for (const std::string& line : progress_) {
    if (line.rfind("jobs ", 0) == 0) job_lines.push_back(line);
  }
  EXPECT_EQ(job_lines, (std::vector<std::string>{"jobs 3/13", "jobs 6/13", "jobs 9/13", "jobs 12/13", "jobs 13/13"}));

  auto source = SqliteJobStore::Open(sqlite_path_);
  auto target = PostgresJobStore::Open(schema_->url());
  ASSERT_TRUE(source.ok() && target.ok());
  ExpectSameStores(**target, **source);
}

TEST_F(StoreMigrationTest, ADataFolderNamesItsStateDb) {
  FillSqlite();
  auto counts = Migrate(false, folder_.path());
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  EXPECT_EQ(counts->jobs.copied, 13);
}

TEST_F(StoreMigrationTest, ARerunIsRefusedWithoutMergeAndSkipsEverythingWithIt) {
  FillSqlite();
  ASSERT_TRUE(Migrate(false).ok());

  auto refused = Migrate(false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalid);
  EXPECT_NE(refused.status().message().find("already holds 13 jobs"), std::string::npos) << refused.status().message();
  EXPECT_NE(refused.status().message().find("--merge"), std::string::npos);

  auto merged = Migrate(true);
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_EQ(merged->jobs.copied, 0);
  EXPECT_EQ(merged->jobs.skipped, 13);
  EXPECT_EQ(merged->webhooks.copied, 0);
  EXPECT_EQ(merged->webhooks.skipped, 3);
  EXPECT_EQ(merged->webhook_attempts.skipped, 4);
  EXPECT_EQ(merged->batches.skipped, 2);
  EXPECT_EQ(merged->batch_images.skipped, 5);
  // Still one copy of everything.
  auto source = SqliteJobStore::Open(sqlite_path_);
  auto target = PostgresJobStore::Open(schema_->url());
  ASSERT_TRUE(source.ok() && target.ok());
  ExpectSameStores(**target, **source);
}

// Interrupted in its second transaction of jobs (after its rows were written,
// before COMMIT): the first stays whole, nothing of the second is there, and a
// rerun with --merge finishes the copy.
TEST_F(StoreMigrationTest, AnInterruptedCopyLeavesWholeTransactionsAndARerunWithMergeFinishesIt) {
  FillSqlite();
  ASSERT_TRUE(ArmFailpoints("store.import_jobs@2").ok());
  auto interrupted = Migrate(false);
  DisarmFailpoints();
  ASSERT_FALSE(interrupted.ok());
  EXPECT_NE(interrupted.status().message().find("injected failure"), std::string::npos)
      << interrupted.status().message();
  {
    auto target = PostgresJobStore::Open(schema_->url());
    ASSERT_TRUE(target.ok());
    auto jobs = (*target)->List({});
    ASSERT_TRUE(jobs.ok());
    ASSERT_EQ(jobs->size(), 3u);  // the first transaction's 3 jobs, and none of the second's
    EXPECT_EQ((*jobs)[0].id, "job-1");
    EXPECT_EQ((*target)->WebhookAttempts("job-3", kAll)->size(), 1u);  // its history came with it
  }
  ASSERT_FALSE(Migrate(false).ok());  // the target holds jobs now
  auto finished = Migrate(true);
  ASSERT_TRUE(finished.ok()) << finished.status().ToString();
  EXPECT_EQ(finished->jobs.copied, 10);
  EXPECT_EQ(finished->jobs.skipped, 3);
  auto source = SqliteJobStore::Open(sqlite_path_);
  auto target = PostgresJobStore::Open(schema_->url());
  ASSERT_TRUE(source.ok() && target.ok());
  ExpectSameStores(**target, **source);
}

TEST_F(StoreMigrationTest, MergeAddsToAnotherServersJobsAfterThem) {
  FillSqlite();
  {
    auto target = PostgresJobStore::Open(schema_->url());
    ASSERT_TRUE(target.ok());
    ASSERT_TRUE((*target)->Insert(MakeJob("theirs")).ok());
  }
  ASSERT_FALSE(Migrate(false).ok());
  auto merged = Migrate(true);
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_EQ(merged->jobs.copied, 13);
  auto target = PostgresJobStore::Open(schema_->url());
  ASSERT_TRUE(target.ok());
  JobFilter queued;
  queued.statuses = {JobStatus::kQueued};
  auto queue = (*target)->List(queued);
  ASSERT_TRUE(queue.ok());
  ASSERT_FALSE(queue->empty());
  EXPECT_EQ(queue->front().id, "theirs");  // the target's own queue keeps its place
}

TEST_F(StoreMigrationTest, AFileAServerHoldsOpenIsRefusedAndNothingIsWritten) {
  FillSqlite();
  auto held = SqliteJobStore::Open(sqlite_path_);  // what a running server keeps open
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE((*held)->Get("job-1").ok());
  auto refused = Migrate(false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalid);
  EXPECT_NE(refused.status().message().find("in use"), std::string::npos) << refused.status().message();
  EXPECT_FALSE(TargetHasTables());
  held->reset();
  EXPECT_TRUE(Migrate(false).ok());
}

TEST_F(StoreMigrationTest, AFileThatIsNoDatabaseGivesAClearErrorAndWritesNothing) {
  std::ofstream(sqlite_path_, std::ios::binary) << std::string(8192, 'x');
  auto refused = Migrate(false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kIo);
  EXPECT_NE(refused.status().message().find("not a SQLite database"), std::string::npos) << refused.status().message();
  EXPECT_FALSE(TargetHasTables());
}

TEST_F(StoreMigrationTest, ADamagedPageGivesAClearErrorAndWritesNothing) {
  FillSqlite();
  // Checkpointed into the main file, then a page in the middle overwritten.
  {
    auto store = SqliteJobStore::Open(sqlite_path_);
    ASSERT_TRUE(store.ok());
  }
  auto size = std::filesystem::file_size(sqlite_path_);
  ASSERT_GT(size, 4096u * 4);
  {
    std::fstream file(sqlite_path_, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(4096 * 2);
    std::string garbage(4096, '\xff');
    file.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  auto refused = Migrate(false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kIo);
  EXPECT_NE(refused.status().message().find("damaged"), std::string::npos) << refused.status().message();
  EXPECT_FALSE(TargetHasTables());
}

TEST_F(StoreMigrationTest, AMissingFileOrANonPostgresTargetIsRefused) {
  auto missing = Migrate(false, folder_.path() + "/nowhere.db");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(folder_.path() + "/nowhere.db"));  // not created either

  FillSqlite();
  MigrationOptions options;
  options.from = sqlite_path_;
  options.to = "mysql://somewhere/db";
  auto refused = MigrateSqliteToPostgres(options, nullptr);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalid);
}

}  // namespace
}  // namespace tessera::store::testing
