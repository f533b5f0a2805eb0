// Whether a SQLite store file may be copied elsewhere now (`tessera store
// migrate`): no other process has it open, and it reads back whole.
#pragma once

#include <string>

#include "util/status.h"

namespace tessera::store {

// Opens `path` (never creating it) and, without waiting:
// - takes SQLite's exclusive lock, which fails while any other connection holds
//   the file open — a running `tessera serve` keeps one open (WAL mode holds a
//   shared lock for the connection's life): kInvalid, "in use";
// - runs PRAGMA quick_check over every page: kIo naming what is damaged, or
//   "not a SQLite database" for a file that is none.
// Releases the lock before returning: the check holds at that moment only (a
// server started during the copy is not stopped; docs/store.md says so).
Status CheckSqliteSource(const std::string& path);

}  // namespace tessera::store
