// Internal to src/store: what every store implementation shares — the column
// lists its statements name, and the readers and binder that map a row to a Job,
// a BatchImageRow or a Batch. Templates over the row type (SQLite's bound
// statement, a PostgreSQL result row), so the mapping is written once and both
// stores read and write the same fields in the same order. A Row has
// ColumnText/ColumnInt/ColumnReal/ColumnIsNull(column); a Binder has
// Text/Int/Real, each returning the binder.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "store/batch.h"
#include "store/job.h"
#include "util/status.h"

namespace tessera::store::rows {

// The columns a Job is read from, in the order ReadJob expects.
inline constexpr const char* kJobColumns =
    "seq, id, kind, status, created_ms, prompt, params_json, input_path, filename, webhook_url, client, "
    "lane, gpu_id, attempts, progress, error, started_ms, finished_ms, batch_id, node";

// The columns Update writes (everything but id, kind, seq and created_ms), in the
// order BindMutableFields binds them.
inline constexpr const char* kMutableColumns[] = {
    "status", "prompt",   "params_json", "input_path", "filename",   "webhook_url", "client",   "lane",
    "gpu_id", "attempts", "progress",    "error",      "started_ms", "finished_ms", "batch_id", "node"};

// The columns a BatchImageRow is read from (image `i` left-joined with its job
// `j`), in the order ReadImageRow expects.
inline constexpr const char* kImageRowColumns =
    "i.id, i.batch_id, i.position, i.original_name, i.input_path, i.job_id, i.attempts, i.retry_at_ms, "
    "j.status, j.error, j.filename, j.started_ms, j.finished_ms";
inline constexpr const char* kImageRowsFrom = " FROM batch_images i LEFT JOIN jobs j ON j.id = i.job_id";

// The columns a Batch is read from, in the order ReadBatch expects.
inline constexpr const char* kBatchColumns =
    "id, game_id, total_images, max_retries, params_json, webhook_url, created_ms, notified_ms";

// The columns of an image row, in the order BindImage binds them.
inline constexpr const char* kImageColumns =
    "id, batch_id, position, original_name, input_path, job_id, attempts, retry_at_ms";

inline int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// Binds the kMutableColumns of `job`, in their order.
template <typename Binder>
void BindMutableFields(Binder& statement, const Job& job) {
  statement.Text(JobStatusName(job.status))
      .Text(job.prompt)
      .Text(job.params_json)
      .Text(job.input_path)
      .Text(job.filename)
      .Text(job.webhook_url)
      .Text(job.client)
      .Text(job.lane)
      .Int(job.gpu_id)
      .Int(job.attempts)
      .Real(job.progress)
      .Text(job.error)
      .Int(job.started_ms)
      .Int(job.finished_ms)
      .Text(job.batch_id)
      .Text(job.node);
}

// Binds the kBatchColumns of `batch`, in their order.
template <typename Binder>
void BindBatch(Binder& statement, const Batch& batch) {
  statement.Text(batch.id)
      .Text(batch.game_id)
      .Int(batch.total_images)
      .Int(batch.max_retries)
      .Text(batch.params_json)
      .Text(batch.webhook_url)
      .Int(batch.created_ms)
      .Int(batch.notified_ms);
}

// Binds the kImageColumns of `image`, in their order, as an image of `batch_id`.
template <typename Binder>
void BindImage(Binder& statement, const BatchImage& image, const std::string& batch_id) {
  statement.Text(image.id)
      .Text(batch_id)
      .Int(image.position)
      .Text(image.original_name)
      .Text(image.input_path)
      .Text(image.job_id)
      .Int(image.attempts)
      .Int(image.retry_at_ms);
}

// Reads one row selected with kJobColumns.
template <typename Row>
Result<Job> ReadJob(const Row& row, std::string_view operation) {
  Job job;
  job.seq = row.ColumnInt(0);
  job.id = row.ColumnText(1);
  std::string kind = row.ColumnText(2);
  std::string status = row.ColumnText(3);
  std::optional<JobKind> parsed_kind = ParseJobKind(kind);
  std::optional<JobStatus> parsed_status = ParseJobStatus(status);
  if (!parsed_kind) return IoError(std::string(operation) + ": job " + job.id + " has unknown kind '" + kind + "'");
  if (!parsed_status) {
    return IoError(std::string(operation) + ": job " + job.id + " has unknown status '" + status + "'");
  }
  job.kind = *parsed_kind;
  job.status = *parsed_status;
  job.created_ms = row.ColumnInt(4);
  job.prompt = row.ColumnText(5);
  job.params_json = row.ColumnText(6);
  job.input_path = row.ColumnText(7);
  job.filename = row.ColumnText(8);
  job.webhook_url = row.ColumnText(9);
  job.client = row.ColumnText(10);
  job.lane = row.ColumnText(11);
  job.gpu_id = static_cast<int>(row.ColumnInt(12));
  job.attempts = static_cast<int>(row.ColumnInt(13));
  job.progress = row.ColumnReal(14);
  job.error = row.ColumnText(15);
  job.started_ms = row.ColumnInt(16);
  job.finished_ms = row.ColumnInt(17);
  job.batch_id = row.ColumnText(18);
  job.node = row.ColumnText(19);
  return job;
}

// Reads one row selected with kImageRowColumns and kImageRowsFrom.
template <typename Row>
Result<BatchImageRow> ReadImageRow(const Row& row, std::string_view operation) {
  BatchImageRow result;
  BatchImage& image = result.image;
  image.id = row.ColumnText(0);
  image.batch_id = row.ColumnText(1);
  image.position = row.ColumnInt(2);
  image.original_name = row.ColumnText(3);
  image.input_path = row.ColumnText(4);
  image.job_id = row.ColumnText(5);
  image.attempts = static_cast<int>(row.ColumnInt(6));
  image.retry_at_ms = row.ColumnInt(7);
  if (row.ColumnIsNull(8)) {
    // The job row is gone (retention deleted it); what it said is lost, and an
    // image must not read as still waiting for it.
    result.job_status = JobStatus::kError;
    result.job_error = "job " + image.job_id + " was deleted";
    return result;
  }
  std::string status = row.ColumnText(8);
  std::optional<JobStatus> parsed_status = ParseJobStatus(status);
  if (!parsed_status) {
    return IoError(std::string(operation) + ": job " + image.job_id + " has unknown status '" + status + "'");
  }
  result.job_status = *parsed_status;
  result.job_error = row.ColumnText(9);
  result.result_filename = row.ColumnText(10);
  result.job_started_ms = row.ColumnInt(11);
  result.job_finished_ms = row.ColumnInt(12);
  return result;
}

template <typename Row>
Batch ReadBatch(const Row& row) {
  Batch batch;
  batch.id = row.ColumnText(0);
  batch.game_id = row.ColumnText(1);
  batch.total_images = row.ColumnInt(2);
  batch.max_retries = static_cast<int>(row.ColumnInt(3));
  batch.params_json = row.ColumnText(4);
  batch.webhook_url = row.ColumnText(5);
  batch.created_ms = row.ColumnInt(6);
  batch.notified_ms = row.ColumnInt(7);
  return batch;
}

}  // namespace tessera::store::rows
