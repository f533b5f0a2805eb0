// The batch half of PostgresJobStore (src/store/batch_store.h): batches, their
// images and the jobs behind them, in the same database as the jobs.
#include "store/pg_statements.h"
#include "store/postgres_job_store.h"
#include "store/store_checks.h"
#include "store/store_rows.h"
#include "util/failpoint.h"

namespace tessera::store {

using namespace rows;
using namespace checks;
using pg::PgConnection;
using pg::PgParams;
using pg::PgResult;
using pg::PgRow;

namespace {

Result<std::vector<BatchImageRow>> ReadImageRows(const PgResult& result, std::string_view operation) {
  std::vector<BatchImageRow> rows;
  for (int row = 0; row < result.rows(); ++row) {
    Result<BatchImageRow> read = ReadImageRow(PgRow(result, row), operation);
    if (!read.ok()) return read.status();
    rows.push_back(std::move(read).value());
  }
  return rows;
}

std::vector<std::string> FirstColumn(const PgResult& result) {
  std::vector<std::string> values;
  for (int row = 0; row < result.rows(); ++row) values.push_back(result.Text(row, 0));
  return values;
}

// Whether a batch with this id exists: tells "no such batch" from "nothing matched".
Result<bool> BatchExists(PgConnection& connection, const std::string& operation, const std::string& batch_id) {
  auto found = connection.Exec(operation, "SELECT 1 FROM batches WHERE id = $1", PgParams().Text(batch_id));
  if (!found.ok()) return found.status();
  return found->rows() > 0;
}

}  // namespace

Result<std::vector<int64_t>> PostgresJobStore::CreateBatch(const Batch& batch, const std::vector<BatchImage>& images,
                                                           const std::vector<Job>& jobs) {
  if (Status valid = checks::CheckNewBatch(batch, images, jobs); !valid.ok()) return valid;
  const std::string operation = "create batch " + batch.id;

  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  PgConnection& db = **connection;
  std::vector<int64_t> seqs;
  Status status = db.InTransaction(operation, [&]() -> Status {
    PgParams batch_values;
    BindBatch(batch_values, batch);
    auto inserted = db.Exec(operation, pg::BatchInsertSql(), batch_values);
    if (!inserted.ok()) {
      if (inserted.status().code() == StatusCode::kInvalid) {
        return InvalidError(operation + ": a batch with this id already exists");
      }
      return inserted.status();
    }
    for (const BatchImage& image : images) {
      // The message names the constraint: a duplicate id or a taken position.
      PgParams image_values;
      BindImage(image_values, image, batch.id);
      auto row = db.Exec(operation + ": image " + image.id, pg::ImageInsertSql(), image_values);
      if (!row.ok()) return row.status();
    }
    for (const Job& job : jobs) {
      Result<int64_t> seq = InsertJob(db, job);
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

Result<Batch> PostgresJobStore::GetBatch(const std::string& id) {
  const std::string operation = "get batch " + id;
  static const std::string sql = std::string("SELECT ") + kBatchColumns + " FROM batches WHERE id = $1";
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto result = (*connection)->Exec(operation, sql, PgParams().Text(id));
  if (!result.ok()) return result.status();
  if (result->rows() == 0) return NotFoundError(operation + ": no such batch");
  return ReadBatch(PgRow(*result, 0));
}

Result<std::vector<Batch>> PostgresJobStore::ListBatches(const std::string& game_id, int64_t before_seq, int64_t limit) {
  const std::string operation = "list batches";
  if (limit <= 0) return InvalidError(operation + ": limit must be positive");
  // One shape of statement: an empty game id and a zero seq match everything.
  static const std::string sql = std::string("SELECT ") + kBatchColumns +
                                 ", seq FROM batches WHERE ($1::text = '' OR game_id = $1::text) "
                                 "AND ($2::bigint = 0 OR seq < $2::bigint) ORDER BY seq DESC LIMIT $3::bigint";
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto result = (*connection)->Exec(operation, sql, PgParams().Text(game_id).Int(before_seq).Int(limit));
  if (!result.ok()) return result.status();
  std::vector<Batch> batches;
  for (int row = 0; row < result->rows(); ++row) {
    Batch batch = ReadBatch(PgRow(*result, row));
    batch.seq = result->Int(row, 8);
    batches.push_back(std::move(batch));
  }
  return batches;
}

Result<std::vector<BatchImageRow>> PostgresJobStore::ListBatchImages(const std::string& batch_id) {
  const std::string operation = "list images of batch " + batch_id;
  static const std::string sql =
      std::string("SELECT ") + kImageRowColumns + kImageRowsFrom + " WHERE i.batch_id = $1 ORDER BY i.position";
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto result = (*connection)->Exec(operation, sql, PgParams().Text(batch_id));
  if (!result.ok()) return result.status();
  auto rows = ReadImageRows(*result, operation);
  if (!rows.ok() || !rows->empty()) return rows;
  // No images: an empty batch, or no batch at all.
  auto exists = BatchExists(**connection, operation, batch_id);
  if (!exists.ok()) return exists.status();
  if (!*exists) return NotFoundError(operation + ": no such batch");
  return rows;
}

Result<std::vector<int64_t>> PostgresJobStore::RetryImages(const std::vector<ImageRetry>& retries) {
  std::vector<int64_t> seqs;
  if (retries.empty()) return seqs;
  const std::string operation = "retry " + std::to_string(retries.size()) + " images";
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  PgConnection& db = **connection;
  Status status = db.InTransaction(operation, [&]() -> Status {
    for (const ImageRetry& retry : retries) {
      const std::string image_operation = operation + ": image " + retry.image_id;
      // FOR UPDATE: two servers retrying one image at once take turns.
      auto image = db.Exec(image_operation, "SELECT batch_id, job_id FROM batch_images WHERE id = $1 FOR UPDATE",
                           PgParams().Text(retry.image_id));
      if (!image.ok()) return image.status();
      if (image->rows() == 0) return InvalidError(image_operation + ": no such image");
      const std::string batch_id = image->Text(0, 0);
      // The lock makes the second of two servers wait, then see the first's job.
      if (!retry.replaces_job_id.empty() && image->Text(0, 1) != retry.replaces_job_id) {
        seqs.push_back(0);  // retried already (by another server): nothing to do
        continue;
      }
      if (retry.job.batch_id != batch_id) {
        return InvalidError(image_operation + " is in batch " + batch_id + " but its new job " + retry.job.id +
                            " names batch '" + retry.job.batch_id + "'");
      }
      Result<int64_t> seq = InsertJob(db, retry.job);
      if (!seq.ok()) return Status(seq.status().code(), image_operation + ": " + seq.status().message());
      seqs.push_back(*seq);
      auto updated =
          db.Exec(image_operation, "UPDATE batch_images SET job_id = $1, attempts = attempts + 1, retry_at_ms = 0 WHERE id = $2",
                  PgParams().Text(retry.job.id).Text(retry.image_id));
      if (!updated.ok()) return updated.status();
    }
    if (FailpointHit("store.retry_images")) {
      return IoError(operation + ": injected failure (failpoint store.retry_images)");
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return seqs;
}

Status PostgresJobStore::ScheduleImageRetry(const std::string& image_id, int64_t retry_at_ms) {
  const std::string operation = "schedule a retry of image " + image_id;
  if (retry_at_ms < 0) return InvalidError(operation + ": negative time " + std::to_string(retry_at_ms));
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto updated = (*connection)->Exec(operation, "UPDATE batch_images SET retry_at_ms = $1 WHERE id = $2",
                                     PgParams().Int(retry_at_ms).Text(image_id));
  if (!updated.ok()) return updated.status();
  if (updated->AffectedRows() == 0) return NotFoundError(operation + ": no such image");
  return Status::Ok();
}

Result<std::vector<BatchImageRow>> PostgresJobStore::ImagesDueForRetry(int64_t now_ms) {
  const std::string operation = "images due for retry";
  static const std::string sql = std::string("SELECT ") + kImageRowColumns + kImageRowsFrom +
                                 " WHERE i.retry_at_ms > 0 AND i.retry_at_ms <= $1 ORDER BY i.retry_at_ms, i.seq";
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto result = (*connection)->Exec(operation, sql, PgParams().Int(now_ms));
  if (!result.ok()) return result.status();
  return ReadImageRows(*result, operation);
}

Result<int64_t> PostgresJobStore::NextImageRetryMs() {
  const std::string operation = "next image retry time";
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto result =
      (*connection)->Exec(operation, "SELECT COALESCE(MIN(retry_at_ms), 0) FROM batch_images WHERE retry_at_ms > 0");
  if (!result.ok()) return result.status();
  return result->Int(0, 0);
}

Result<BatchImageRow> PostgresJobStore::ImageForJob(const std::string& job_id) {
  const std::string operation = "image of job " + job_id;
  static const std::string sql =
      std::string("SELECT ") + kImageRowColumns + kImageRowsFrom + " WHERE i.job_id = $1 ORDER BY i.seq LIMIT 1";
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto result = (*connection)->Exec(operation, sql, PgParams().Text(job_id));
  if (!result.ok()) return result.status();
  if (result->rows() == 0) return NotFoundError(operation + ": the job is no image's current job");
  return ReadImageRow(PgRow(*result, 0), operation);
}

Result<bool> PostgresJobStore::MarkBatchNotified(const std::string& batch_id, int64_t now_ms) {
  const std::string operation = "mark batch " + batch_id + " notified";
  // 0 means "not yet": a time that reads as 0 would let the batch notify again.
  if (now_ms <= 0) return InvalidError(operation + ": time " + std::to_string(now_ms) + " is not after the epoch");
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  // One statement decides: of two servers marking at once, one changes the row.
  auto updated = (*connection)->Exec(operation, "UPDATE batches SET notified_ms = $1 WHERE id = $2 AND notified_ms = 0",
                                     PgParams().Int(now_ms).Text(batch_id));
  if (!updated.ok()) return updated.status();
  if (updated->AffectedRows() == 1) return true;
  auto exists = BatchExists(**connection, operation, batch_id);
  if (!exists.ok()) return exists.status();
  if (!*exists) return NotFoundError(operation + ": no such batch");
  return false;
}

Result<std::vector<std::string>> PostgresJobStore::UnsettledBatchIds() {
  const std::string operation = "unsettled batches";
  // From the unfinished jobs (few, by the status index) and the scheduled retries
  // (by the retry index), not from a scan of every image ever uploaded.
  static const std::string sql =
      "SELECT id FROM batches WHERE id IN ("
      "SELECT i.batch_id FROM jobs j JOIN batch_images i ON i.job_id = j.id WHERE j.status = ANY($1::text[]) "
      "UNION SELECT batch_id FROM batch_images WHERE retry_at_ms > 0) ORDER BY seq";
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto result = (*connection)->Exec(
      operation, sql,
      PgParams().TextArray({std::string(JobStatusName(JobStatus::kQueued)), std::string(JobStatusName(JobStatus::kRunning))}));
  if (!result.ok()) return result.status();
  return FirstColumn(*result);
}

Result<std::vector<std::string>> PostgresJobStore::UnnotifiedBatchIds() {
  const std::string operation = "unnotified batches";
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto result = (*connection)->Exec(operation, "SELECT id FROM batches WHERE notified_ms = 0 ORDER BY seq");
  if (!result.ok()) return result.status();
  return FirstColumn(*result);
}

}  // namespace tessera::store
