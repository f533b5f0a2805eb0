// Internal to src/store: the pieces the SQLite job and batch store files share —
// column lists, a bound-statement wrapper, row readers, the durability guard.
// Include only from sqlite_*_store.cpp (it includes sqlite3.h).
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "store/batch.h"
#include "store/job.h"
#include "util/status.h"

namespace tessera::store::sqlite_detail {

// The columns a Job is read from, in the order ReadJob expects.
inline constexpr const char* kJobColumns =
    "seq, id, kind, status, created_ms, prompt, params_json, input_path, filename, webhook_url, client, "
    "lane, gpu_id, attempts, progress, error, started_ms, finished_ms, batch_id";

// The columns Update writes (everything but id, kind, seq and created_ms), in the
// order BindMutableFields binds them.
inline constexpr const char* kMutableColumns[] = {"status",      "prompt", "params_json", "input_path",  "filename",
                                           "webhook_url", "client", "lane",        "gpu_id",      "attempts",
                                           "progress",    "error",  "started_ms",  "finished_ms", "batch_id"};

// The columns a BatchImageRow is read from (image `i` left-joined with its job
// `j`), in the order ReadImageRow expects.
inline constexpr const char* kImageRowColumns =
    "i.id, i.batch_id, i.position, i.original_name, i.input_path, i.job_id, i.attempts, i.retry_at_ms, "
    "j.status, j.error, j.filename, j.started_ms, j.finished_ms";
inline constexpr const char* kImageRowsFrom = " FROM batch_images i LEFT JOIN jobs j ON j.id = i.job_id";

// The columns a Batch is read from, in the order ReadBatch expects.
inline constexpr const char* kBatchColumns =
    "id, game_id, total_images, max_retries, params_json, webhook_url, created_ms, notified_ms";

inline int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

inline bool ValidProgress(double progress) { return std::isfinite(progress) && progress >= 0.0 && progress <= 1.0; }

inline std::string ProgressOutOfRange(const std::string& operation, double progress) {
  char text[64];
  std::snprintf(text, sizeof text, "%g", progress);
  return operation + ": progress " + text + " is outside [0, 1]";
}

// A JSON array of strings, the one bound value behind `IN (SELECT value FROM
// json_each(?))`, so a list of any length is one cached statement.
inline std::string JsonStringArray(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const std::string& item : items) {
    if (out.size() > 1) out.push_back(',');
    out.push_back('"');
    for (char c : item) {
      if (c == '"' || c == '\\') {
        out.push_back('\\');
        out.push_back(c);
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char escape[8];
        std::snprintf(escape, sizeof escape, "\\u%04x", static_cast<unsigned char>(c));
        out.append(escape);
      } else {
        out.push_back(c);
      }
    }
    out.push_back('"');
  }
  out.push_back(']');
  return out;
}

// A cached statement in use: bind in order, step, read columns. Resets the
// statement and clears its bindings when it goes out of scope, so the next user
// finds it fresh.
class BoundStatement {
 public:
  explicit BoundStatement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~BoundStatement() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  BoundStatement(const BoundStatement&) = delete;
  BoundStatement& operator=(const BoundStatement&) = delete;

  BoundStatement& Text(std::string_view value) {
    // A null pointer would bind SQL NULL; an empty string_view may carry one.
    const char* data = value.data() != nullptr ? value.data() : "";
    return Check(sqlite3_bind_text64(stmt_, ++index_, data, value.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  BoundStatement& Int(int64_t value) { return Check(sqlite3_bind_int64(stmt_, ++index_, value)); }
  BoundStatement& Real(double value) { return Check(sqlite3_bind_double(stmt_, ++index_, value)); }
  BoundStatement& Null() { return Check(sqlite3_bind_null(stmt_, ++index_)); }

  // SQLITE_ROW, SQLITE_DONE, or an error code (a failed bind's first).
  int Step() { return bind_rc_ != SQLITE_OK ? bind_rc_ : sqlite3_step(stmt_); }

  // Rewinds for another run with new bindings (for statements run in a loop).
  void Rebind() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    index_ = 0;
    bind_rc_ = SQLITE_OK;
  }

  std::string ColumnText(int column) const {
    const unsigned char* text = sqlite3_column_text(stmt_, column);
    if (text == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
  }
  int64_t ColumnInt(int column) const { return sqlite3_column_int64(stmt_, column); }
  bool ColumnIsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  double ColumnReal(int column) const { return sqlite3_column_double(stmt_, column); }

 private:
  BoundStatement& Check(int rc) {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
    return *this;
  }

  sqlite3_stmt* stmt_;
  int index_ = 0;
  int bind_rc_ = SQLITE_OK;
};

// Binds the kMutableColumns of `job`, in their order.
inline void BindMutableFields(BoundStatement& statement, const Job& job) {
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
      .Text(job.batch_id);
}

// Reads one row selected with kJobColumns.
inline Result<Job> ReadJob(const BoundStatement& row, std::string_view operation) {
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
  return job;
}

// Reads one row selected with kImageRowColumns and kImageRowsFrom.
inline Result<BatchImageRow> ReadImageRow(const BoundStatement& row, std::string_view operation) {
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

inline Batch ReadBatch(const BoundStatement& row) {
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



// For the length of a write a client is told about: synchronous=FULL, so the
// commit is on disk (power cut included) when the call returns. Requires the
// store's mutex; restores NORMAL.
class FullSync {
 public:
  explicit FullSync(sqlite3* db) : db_(db) { sqlite3_exec(db_, "PRAGMA synchronous = FULL", nullptr, nullptr, nullptr); }
  ~FullSync() { sqlite3_exec(db_, "PRAGMA synchronous = NORMAL", nullptr, nullptr, nullptr); }
  FullSync(const FullSync&) = delete;
  FullSync& operator=(const FullSync&) = delete;

 private:
  sqlite3* db_;
};


}  // namespace tessera::store::sqlite_detail
