// Internal to src/store: SQL text (and the reading of its rows) that the
// PostgreSQL store's files and the importer from SQLite (postgres_import.h)
// share, so that they cannot drift apart.
#pragma once

#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "store/job_store.h"
#include "store/pg_connection.h"
#include "store/store_rows.h"

namespace tessera::store::pg {

// "$1, $2, ..." placeholders, numbered from `first`.
inline std::string Placeholders(int first, int count) {
  std::string text;
  for (int i = 0; i < count; ++i) text += (i == 0 ? "$" : ", $") + std::to_string(first + i);
  return text;
}

// INSERT of a job's id, kind, created_ms and rows::kMutableColumns, bound in that
// order (Text id, Text kind, Int created_ms, then rows::BindMutableFields). The
// caller appends what follows (RETURNING seq, ON CONFLICT ...).
inline const std::string& JobInsertSql() {
  static const std::string sql = [] {
    std::string columns = "id, kind, created_ms";
    for (const char* column : rows::kMutableColumns) columns += std::string(", ") + column;
    constexpr int kCount = 3 + static_cast<int>(std::size(rows::kMutableColumns));
    return "INSERT INTO jobs(" + columns + ") VALUES(" + Placeholders(1, kCount) + ")";
  }();
  return sql;
}

// UPDATE of every rows::kMutableColumns of one job, bound in that order (then
// Text id as the last value). A caller may append conditions (" AND ...") whose
// placeholders follow the id's.
inline const std::string& JobUpdateSql() {
  static const std::string sql = [] {
    std::string assignments;
    int index = 0;
    for (const char* column : rows::kMutableColumns) {
      if (index > 0) assignments += ", ";
      assignments += std::string(column) + " = $" + std::to_string(++index);
    }
    return "UPDATE jobs SET " + assignments + " WHERE id = $" + std::to_string(index + 1);
  }();
  return sql;
}

// The jobs of a result selected with rows::kJobColumns, in its order.
inline Result<std::vector<Job>> ReadJobs(const PgResult& result, std::string_view operation) {
  std::vector<Job> jobs;
  jobs.reserve(static_cast<size_t>(result.rows()));
  for (int row = 0; row < result.rows(); ++row) {
    Result<Job> job = rows::ReadJob(PgRow(result, row), operation);
    if (!job.ok()) return job.status();
    jobs.push_back(std::move(job).value());
  }
  return jobs;
}

// INSERTs of a batch (rows::kBatchColumns, bound by rows::BindBatch) and of an
// image (rows::kImageColumns, bound by rows::BindImage).
inline const std::string& BatchInsertSql() {
  static const std::string sql = std::string("INSERT INTO batches(") + rows::kBatchColumns + ") VALUES(" +
                                 Placeholders(1, 8) + ")";
  return sql;
}
inline const std::string& ImageInsertSql() {
  static const std::string sql = std::string("INSERT INTO batch_images(") + rows::kImageColumns + ") VALUES(" +
                                 Placeholders(1, 8) + ")";
  return sql;
}

// INSERT of a webhook delivery attempt, its values bound (the store records one
// as it happens, the importer copies them).
inline constexpr const char* kWebhookAttemptInsertSql =
    "INSERT INTO webhook_attempts(delivery_id, job_id, url, event, attempt, delivered, final, error, at_ms) "
    "VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9)";
inline PgParams WebhookAttemptParams(const WebhookAttemptRecord& attempt) {
  return PgParams()
      .Text(attempt.delivery_id)
      .Text(attempt.job_id)
      .Text(attempt.url)
      .Text(attempt.event)
      .Int(attempt.attempt)
      .Bool(attempt.delivered)
      .Bool(attempt.final)
      .Text(attempt.error)
      .Int(attempt.at_ms);
}

}  // namespace tessera::store::pg
