// The embedded job store: one SQLite database file (the server's data/state.db).
// It is the batch store too: a batch, its images and their jobs live in one file
// so that they are created, and retried, in one transaction.
//
// Durability: WAL journal. What a client is told about — Insert, CreateBatch,
// RetryImages, AddWebhook — commits with synchronous=FULL: when the call returns
// it has reached the disk and survives a power cut. State changes (Update,
// UpdateAll, UpdateProgress, ScheduleImageRetry...) commit with NORMAL: they
// survive a crash of this process, and on a power cut the last few may be lost —
// a job then looks queued or running again and is run again, never lost.
//
// Thread safety: one SqliteJobStore holds one connection, guarded by one mutex.
// Every method may be called from any thread at any time; calls run one after
// another, each atomically. Other processes may open the same file: SQLite's file
// locks keep them consistent, and a writer waits up to 5 s for a lock before the
// call fails with kIo ("database is locked").
//
// Schema: versioned migrations, applied in order at Open, each in its own
// transaction and recorded in `schema_migrations`. Opening a database written by a
// newer build (a version this build does not know) is refused, never guessed at.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace tessera::store {

class SqliteJobStore final : public Store {
 public:
  // Opens (creating when missing) the database at `path`, and its parent directory;
  // ":memory:" gives a private in-memory database, for tests. Errors name the path:
  // kIo when the file cannot be opened or is not a SQLite database, kUnsupported
  // when its schema is newer than this build, kInvalid for an empty path.
  static Result<std::unique_ptr<SqliteJobStore>> Open(const std::string& path);

  // The schema version this build migrates databases to.
  static int LatestSchemaVersion();

  ~SqliteJobStore() override;
  SqliteJobStore(const SqliteJobStore&) = delete;
  SqliteJobStore& operator=(const SqliteJobStore&) = delete;

  // JobStore. Beyond the interface's contract: Insert refuses an empty id and
  // Insert/Update/UpdateProgress refuse a progress outside [0, 1] (kInvalid);
  // List refuses a negative limit and RecentDurations a negative one (kInvalid);
  // AddWebhook for an id that is not a stored job is kNotFound, and deleting a job
  // deletes its own webhook registrations.
  Result<int64_t> Insert(const Job& job) override;
  Result<Job> Get(const std::string& id) override;
  Status Update(const Job& job) override;
  Status UpdateAll(const std::vector<Job>& jobs) override;
  Status UpdateProgress(const std::string& id, double progress) override;
  Result<std::vector<Job>> List(const JobFilter& filter) override;
  Result<int64_t> Delete(const std::vector<std::string>& ids) override;
  Result<std::map<JobStatus, int64_t>> CountByStatus() override;
  Result<std::vector<double>> RecentDurations(const std::string& lane, JobKind kind, int limit) override;
  Result<int64_t> AddWebhook(const WebhookRegistration& registration) override;
  Result<std::vector<WebhookRegistration>> WebhooksFor(const std::string& job_id) override;
  Status AddWebhookAttempt(const WebhookAttemptRecord& attempt) override;
  Result<std::vector<WebhookAttemptRecord>> WebhookAttempts(const std::string& job_id, int64_t limit) override;

  // BatchStore. Beyond the interface's contract:
  // - CreateBatch is kInvalid (nothing written) for an empty batch or image id,
  //   images and jobs of different lengths, an image whose job_id is not its job's
  //   id, an image or job whose batch_id is not the batch's id, total_images not
  //   equal to the number of images, two images at one position, or an id (batch,
  //   image or job) that already exists.
  // - RetryImages is kInvalid (nothing written) also when a new job's batch_id is
  //   not its image's batch.
  // - ScheduleImageRetry refuses a negative time (kInvalid) and is kNotFound for an
  //   unknown image; MarkBatchNotified refuses now_ms <= 0 (kInvalid) and is
  //   kNotFound for an unknown batch; ListBatchImages is kNotFound for an unknown
  //   batch.
  // - Jobs may be deleted (retention) while their image still points at them: such
  //   an image reads as status error, with an error saying its job was deleted.
  // - UnsettledBatchIds come in creation order; ImagesDueForRetry ties in due time
  //   come in creation order; "oldest first" in UnnotifiedBatchIds is creation
  //   order too.
  // - Failpoints (src/util/failpoint.h), for tests: "store.create_batch" and
  //   "store.retry_images" fail the call with kIo after every row is written and
  //   before COMMIT, so the rollback is what is tested.
  Result<std::vector<int64_t>> CreateBatch(const Batch& batch, const std::vector<BatchImage>& images,
                                           const std::vector<Job>& jobs) override;
  Result<Batch> GetBatch(const std::string& id) override;
  Result<std::vector<Batch>> ListBatches(const std::string& game_id, int64_t before_seq, int64_t limit) override;
  Result<std::vector<BatchImageRow>> ListBatchImages(const std::string& batch_id) override;
  Result<std::vector<int64_t>> RetryImages(const std::vector<ImageRetry>& retries) override;
  Status ScheduleImageRetry(const std::string& image_id, int64_t retry_at_ms) override;
  Result<std::vector<BatchImageRow>> ImagesDueForRetry(int64_t now_ms) override;
  Result<int64_t> NextImageRetryMs() override;
  Result<BatchImageRow> ImageForJob(const std::string& job_id) override;
  Result<bool> MarkBatchNotified(const std::string& batch_id, int64_t now_ms) override;
  Result<std::vector<std::string>> UnsettledBatchIds() override;
  Result<std::vector<std::string>> UnnotifiedBatchIds() override;

 private:
  SqliteJobStore(std::string path, sqlite3* db);

  // All below require mu_ held (Open runs before the store is shared).
  Status Configure();
  // Applies the steps this database lacks; returns how many.
  Result<int> Migrate();
  Status Exec(std::string_view operation, const char* sql);
  Status UpdateLocked(const std::string& operation, const std::string& sql, const Job& job);
  // BEGIN IMMEDIATE, `body`, COMMIT; ROLLBACK when the body or the commit fails.
  // The body's statements must be reset when it returns (BoundStatement does).
  Status InTransaction(std::string_view operation, const std::function<Status()>& body);
  // Inserts one job; returns its seq. kInvalid for an empty or existing id or a
  // progress outside [0, 1].
  Result<int64_t> InsertJob(const Job& job);
  // A prepared statement for `sql`, prepared once and kept for the store's life.
  Result<sqlite3_stmt*> Prepare(std::string_view operation, const std::string& sql);
  // "<operation>: <sqlite's message>" as a Status of `code`.
  Status SqlError(std::string_view operation, StatusCode code = StatusCode::kIo) const;

  const std::string path_;
  std::mutex mu_;
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
};

}  // namespace tessera::store
