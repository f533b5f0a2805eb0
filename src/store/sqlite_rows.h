// Internal to src/store: the pieces the SQLite job and batch store files share —
// a bound-statement wrapper and the durability guard (columns and row readers
// shared with PostgreSQL are in store_rows.h). Include only from
// sqlite_*_store.cpp (it includes sqlite3.h).
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "store/store_rows.h"
#include "util/status.h"

namespace tessera::store::sqlite_detail {

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
