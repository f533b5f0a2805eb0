// The batch half of SqliteJobStore (src/store/batch_store.h): batches, their
// images and the jobs behind them, in the same database as the jobs.
#include <sqlite3.h>

#include <algorithm>

#include "store/sqlite_job_store.h"
#include "store/sqlite_rows.h"
#include "store/store_checks.h"
#include "util/failpoint.h"
#include "util/log.h"

namespace tessera::store {

using namespace sqlite_detail;
using namespace rows;
using namespace checks;

Result<std::vector<int64_t>> SqliteJobStore::CreateBatch(const Batch& batch, const std::vector<BatchImage>& images,
                                                         const std::vector<Job>& jobs) {
  if (Status valid = checks::CheckNewBatch(batch, images, jobs); !valid.ok()) return valid;
  const std::string operation = "create batch " + batch.id;

  std::vector<int64_t> seqs;
  std::lock_guard lock(mu_);
  FullSync durable(db_);
  Status status = InTransaction(operation, [&]() -> Status {
    Result<sqlite3_stmt*> insert_batch =
        Prepare(operation, std::string("INSERT INTO batches(") + kBatchColumns + ") VALUES(?, ?, ?, ?, ?, ?, ?, ?)");
    if (!insert_batch.ok()) return insert_batch.status();
    {
      BoundStatement statement(*insert_batch);
      BindBatch(statement, batch);
      int rc = statement.Step();
      if (rc == SQLITE_CONSTRAINT_UNIQUE) return InvalidError(operation + ": a batch with this id already exists");
      if (rc != SQLITE_DONE) return SqlError(operation);
    }

    Result<sqlite3_stmt*> insert_image = Prepare(
        operation, std::string("INSERT INTO batch_images(") + kImageColumns + ") VALUES(?, ?, ?, ?, ?, ?, ?, ?)");
    if (!insert_image.ok()) return insert_image.status();
    for (const BatchImage& image : images) {
      BoundStatement statement(*insert_image);
      BindImage(statement, image, batch.id);
      int rc = statement.Step();
      // The message names the constraint: a duplicate id or a taken position.
      if (rc == SQLITE_CONSTRAINT_UNIQUE) return SqlError(operation + ": image " + image.id, StatusCode::kInvalid);
      if (rc != SQLITE_DONE) return SqlError(operation + ": image " + image.id);
    }

    for (const Job& job : jobs) {
      Result<int64_t> seq = InsertJob(job);
      if (!seq.ok()) return Status(seq.status().code(), operation + ": " + seq.status().message());
      seqs.push_back(*seq);
    }

    if (FailpointHit("store.create_batch")) {
      return IoError(operation + ": injected failure (failpoint store.create_batch)");
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return seqs;
}

Result<Batch> SqliteJobStore::GetBatch(const std::string& id) {
  const std::string operation = "get batch " + id;
  static const std::string sql = std::string("SELECT ") + kBatchColumns + " FROM batches WHERE id = ?";
  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared = Prepare(operation, sql);
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  int rc = statement.Text(id).Step();
  if (rc == SQLITE_DONE) return NotFoundError(operation + ": no such batch");
  if (rc != SQLITE_ROW) return SqlError(operation);
  return ReadBatch(statement);
}

Result<std::vector<Batch>> SqliteJobStore::ListBatches(const std::string& game_id, int64_t before_seq, int64_t limit) {
  const std::string operation = "list batches";
  if (limit <= 0) return InvalidError(operation + ": limit must be positive");
  // One shape of statement: an empty game id and a zero seq match everything.
  static const std::string sql = std::string("SELECT ") + kBatchColumns +
                                 ", seq FROM batches WHERE (? = '' OR game_id = ?) AND (? = 0 OR seq < ?) "
                                 "ORDER BY seq DESC LIMIT ?";
  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared = Prepare(operation, sql);
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  statement.Text(game_id).Text(game_id).Int(before_seq).Int(before_seq).Int(limit);
  std::vector<Batch> batches;
  int rc;
  while ((rc = statement.Step()) == SQLITE_ROW) {
    Batch batch = ReadBatch(statement);
    batch.seq = statement.ColumnInt(8);
    batches.push_back(std::move(batch));
  }
  if (rc != SQLITE_DONE) return SqlError(operation);
  return batches;
}

Result<std::vector<BatchImageRow>> SqliteJobStore::ListBatchImages(const std::string& batch_id) {
  const std::string operation = "list images of batch " + batch_id;
  static const std::string sql =
      std::string("SELECT ") + kImageRowColumns + kImageRowsFrom + " WHERE i.batch_id = ? ORDER BY i.position";
  std::lock_guard lock(mu_);
  std::vector<BatchImageRow> rows;
  {
    Result<sqlite3_stmt*> prepared = Prepare(operation, sql);
    if (!prepared.ok()) return prepared.status();
    BoundStatement statement(*prepared);
    statement.Text(batch_id);
    int rc;
    while ((rc = statement.Step()) == SQLITE_ROW) {
      Result<BatchImageRow> row = ReadImageRow(statement, operation);
      if (!row.ok()) return row.status();
      rows.push_back(std::move(row).value());
    }
    if (rc != SQLITE_DONE) return SqlError(operation);
  }
  if (rows.empty()) {
    // No images: an empty batch, or no batch at all.
    Result<sqlite3_stmt*> prepared = Prepare(operation, "SELECT 1 FROM batches WHERE id = ?");
    if (!prepared.ok()) return prepared.status();
    BoundStatement statement(*prepared);
    int rc = statement.Text(batch_id).Step();
    if (rc == SQLITE_DONE) return NotFoundError(operation + ": no such batch");
    if (rc != SQLITE_ROW) return SqlError(operation);
  }
  return rows;
}

Result<std::vector<int64_t>> SqliteJobStore::RetryImages(const std::vector<ImageRetry>& retries) {
  std::vector<int64_t> seqs;
  if (retries.empty()) return seqs;
  const std::string operation = "retry " + std::to_string(retries.size()) + " images";
  std::lock_guard lock(mu_);
  FullSync durable(db_);
  Status status = InTransaction(operation, [&]() -> Status {
    Result<sqlite3_stmt*> select = Prepare(operation, "SELECT batch_id, job_id FROM batch_images WHERE id = ?");
    if (!select.ok()) return select.status();
    Result<sqlite3_stmt*> update =
        Prepare(operation, "UPDATE batch_images SET job_id = ?, attempts = attempts + 1, retry_at_ms = 0 WHERE id = ?");
    if (!update.ok()) return update.status();
    for (const ImageRetry& retry : retries) {
      const std::string image_operation = operation + ": image " + retry.image_id;
      std::string batch_id;
      std::string current_job_id;
      {
        BoundStatement statement(*select);
        int rc = statement.Text(retry.image_id).Step();
        if (rc == SQLITE_DONE) return InvalidError(image_operation + ": no such image");
        if (rc != SQLITE_ROW) return SqlError(image_operation);
        batch_id = statement.ColumnText(0);
        current_job_id = statement.ColumnText(1);
      }
      if (!retry.replaces_job_id.empty() && current_job_id != retry.replaces_job_id) {
        seqs.push_back(0);  // retried already (by another server): nothing to do
        continue;
      }
      if (retry.job.batch_id != batch_id) {
        return InvalidError(image_operation + " is in batch " + batch_id + " but its new job " + retry.job.id +
                            " names batch '" + retry.job.batch_id + "'");
      }
      Result<int64_t> seq = InsertJob(retry.job);
      if (!seq.ok()) return Status(seq.status().code(), image_operation + ": " + seq.status().message());
      seqs.push_back(*seq);
      BoundStatement statement(*update);
      if (statement.Text(retry.job.id).Text(retry.image_id).Step() != SQLITE_DONE) return SqlError(image_operation);
    }
    if (FailpointHit("store.retry_images")) {
      return IoError(operation + ": injected failure (failpoint store.retry_images)");
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return seqs;
}

Status SqliteJobStore::ScheduleImageRetry(const std::string& image_id, int64_t retry_at_ms) {
  const std::string operation = "schedule a retry of image " + image_id;
  if (retry_at_ms < 0) return InvalidError(operation + ": negative time " + std::to_string(retry_at_ms));
  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared = Prepare(operation, "UPDATE batch_images SET retry_at_ms = ? WHERE id = ?");
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  if (statement.Int(retry_at_ms).Text(image_id).Step() != SQLITE_DONE) return SqlError(operation);
  if (sqlite3_changes64(db_) == 0) return NotFoundError(operation + ": no such image");
  return Status::Ok();
}

Result<std::vector<BatchImageRow>> SqliteJobStore::ImagesDueForRetry(int64_t now_ms) {
  const std::string operation = "images due for retry";
  static const std::string sql = std::string("SELECT ") + kImageRowColumns + kImageRowsFrom +
                                 " WHERE i.retry_at_ms > 0 AND i.retry_at_ms <= ? ORDER BY i.retry_at_ms, i.seq";
  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared = Prepare(operation, sql);
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  statement.Int(now_ms);
  std::vector<BatchImageRow> rows;
  int rc;
  while ((rc = statement.Step()) == SQLITE_ROW) {
    Result<BatchImageRow> row = ReadImageRow(statement, operation);
    if (!row.ok()) return row.status();
    rows.push_back(std::move(row).value());
  }
  if (rc != SQLITE_DONE) return SqlError(operation);
  return rows;
}

Result<int64_t> SqliteJobStore::NextImageRetryMs() {
  const std::string operation = "next image retry time";
  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared =
      Prepare(operation, "SELECT COALESCE(MIN(retry_at_ms), 0) FROM batch_images WHERE retry_at_ms > 0");
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  if (statement.Step() != SQLITE_ROW) return SqlError(operation);
  return statement.ColumnInt(0);
}

Result<BatchImageRow> SqliteJobStore::ImageForJob(const std::string& job_id) {
  const std::string operation = "image of job " + job_id;
  static const std::string sql =
      std::string("SELECT ") + kImageRowColumns + kImageRowsFrom + " WHERE i.job_id = ? ORDER BY i.seq LIMIT 1";
  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared = Prepare(operation, sql);
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  int rc = statement.Text(job_id).Step();
  if (rc == SQLITE_DONE) return NotFoundError(operation + ": the job is no image's current job");
  if (rc != SQLITE_ROW) return SqlError(operation);
  return ReadImageRow(statement, operation);
}

Result<bool> SqliteJobStore::MarkBatchNotified(const std::string& batch_id, int64_t now_ms) {
  const std::string operation = "mark batch " + batch_id + " notified";
  // 0 means "not yet": a time that reads as 0 would let the batch notify again.
  if (now_ms <= 0) return InvalidError(operation + ": time " + std::to_string(now_ms) + " is not after the epoch");
  std::lock_guard lock(mu_);
  {
    Result<sqlite3_stmt*> prepared =
        Prepare(operation, "UPDATE batches SET notified_ms = ? WHERE id = ? AND notified_ms = 0");
    if (!prepared.ok()) return prepared.status();
    BoundStatement statement(*prepared);
    if (statement.Int(now_ms).Text(batch_id).Step() != SQLITE_DONE) return SqlError(operation);
    if (sqlite3_changes64(db_) == 1) return true;
  }
  Result<sqlite3_stmt*> prepared = Prepare(operation, "SELECT 1 FROM batches WHERE id = ?");
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  int rc = statement.Text(batch_id).Step();
  if (rc == SQLITE_DONE) return NotFoundError(operation + ": no such batch");
  if (rc != SQLITE_ROW) return SqlError(operation);
  return false;
}

Result<std::vector<std::string>> SqliteJobStore::UnsettledBatchIds() {
  const std::string operation = "unsettled batches";
  // From the unfinished jobs (few, by the status index) and the scheduled retries
  // (by the retry index), not from a scan of every image ever uploaded.
  static const std::string sql =
      "SELECT id FROM batches WHERE id IN ("
      "SELECT i.batch_id FROM jobs j JOIN batch_images i ON i.job_id = j.id WHERE j.status IN (?, ?) "
      "UNION SELECT batch_id FROM batch_images WHERE retry_at_ms > 0) ORDER BY seq";
  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared = Prepare(operation, sql);
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  statement.Text(JobStatusName(JobStatus::kQueued)).Text(JobStatusName(JobStatus::kRunning));
  std::vector<std::string> ids;
  int rc;
  while ((rc = statement.Step()) == SQLITE_ROW) ids.push_back(statement.ColumnText(0));
  if (rc != SQLITE_DONE) return SqlError(operation);
  return ids;
}

Result<std::vector<std::string>> SqliteJobStore::UnnotifiedBatchIds() {
  const std::string operation = "unnotified batches";
  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared = Prepare(operation, "SELECT id FROM batches WHERE notified_ms = 0 ORDER BY seq");
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  std::vector<std::string> ids;
  int rc;
  while ((rc = statement.Step()) == SQLITE_ROW) ids.push_back(statement.ColumnText(0));
  if (rc != SQLITE_DONE) return SqlError(operation);
  return ids;
}

}  // namespace tessera::store
