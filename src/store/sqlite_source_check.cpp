#include "store/sqlite_source_check.h"

#include <sqlite3.h>

#include <filesystem>
#include <memory>

namespace tessera::store {
namespace {

struct CloseDb {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};

}  // namespace

Status CheckSqliteSource(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) return NotFoundError("no SQLite store at " + path);
  sqlite3* raw = nullptr;
  // Read-write (WAL recovery after a crash writes), never CREATE.
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr);
  std::unique_ptr<sqlite3, CloseDb> db(raw);
  if (rc != SQLITE_OK) return IoError("cannot open " + path + ": " + sqlite3_errmsg(raw));
  sqlite3_busy_timeout(raw, 0);  // a lock someone holds is an answer, not a wait
  auto exec = [&](const char* sql) { return sqlite3_exec(raw, sql, nullptr, nullptr, nullptr); };
  auto damaged = [&](int code) {
    if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED) {
      return InvalidError(path + " is in use by another process (a running tessera serve?): stop it, then migrate");
    }
    if (code == SQLITE_NOTADB) return IoError(path + " is not a SQLite database (or its header is damaged)");
    return IoError(path + " cannot be read: " + sqlite3_errmsg(raw));
  };
  // EXCLUSIVE locking mode makes the transaction below take the file's
  // exclusive lock, which no reader may share (a plain BEGIN EXCLUSIVE in WAL
  // mode would still let readers in).
  if (int code = exec("PRAGMA locking_mode = EXCLUSIVE"); code != SQLITE_OK) return damaged(code);
  if (int code = exec("BEGIN EXCLUSIVE"); code != SQLITE_OK) return damaged(code);
  if (int code = exec("SELECT COUNT(*) FROM sqlite_master"); code != SQLITE_OK) return damaged(code);

  std::string problems;
  sqlite3_stmt* check = nullptr;
  if (sqlite3_prepare_v2(raw, "PRAGMA quick_check(5)", -1, &check, nullptr) != SQLITE_OK) {
    return damaged(sqlite3_errcode(raw));
  }
  while ((rc = sqlite3_step(check)) == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(check, 0);
    std::string line = text ? reinterpret_cast<const char*>(text) : "";
    if (line != "ok") problems += (problems.empty() ? "" : "; ") + line;
  }
  sqlite3_finalize(check);
  if (rc != SQLITE_DONE) {
    return IoError(path + " is damaged: " + std::string(sqlite3_errmsg(raw)));
  }
  if (!problems.empty()) return IoError(path + " is damaged: " + problems);
  exec("ROLLBACK");
  return Status::Ok();
}

}  // namespace tessera::store
