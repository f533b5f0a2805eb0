// Internal to src/store: SQL text the PostgreSQL store and the importer from
// SQLite (postgres_import.h) both write, so the two cannot drift apart.
#pragma once

#include <iterator>
#include <string>

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

}  // namespace tessera::store::pg
