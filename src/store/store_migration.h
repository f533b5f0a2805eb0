// `tessera store migrate`: copies a SQLite store (a server's state.db) into a
// PostgreSQL database, so that a server that outgrew one machine keeps its
// history, queue, batches and webhooks when it moves to the shared store.
//
// Safe to interrupt and to run again:
// - the SQLite file is checked first (sqlite_source_check.h): not in use by a
//   server, readable to the last page; nothing is written before that;
// - a target that already holds jobs is refused unless `merge` (then rows
//   whose id it holds are skipped and counted);
// - every write is one transaction per chunk of jobs (with their webhook
//   registrations and delivery attempts) or per batch (with its images), so an
//   interruption leaves whole chunks, and a rerun with `merge` copies the rest.
// What is copied, field by field, and how seq order is kept: postgres_import.h.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "store/postgres_import.h"
#include "util/status.h"

namespace tessera::store {

struct MigrationOptions {
  std::string from;  // a SQLite file, or a data folder holding state.db
  std::string to;    // a postgresql:// (or postgres://) URL
  bool merge = false;
  int64_t jobs_per_transaction = 500;
};

// After each transaction: the table, its rows so far, and how many it has in
// all in the source.
using MigrationProgress = std::function<void(std::string_view table, const RowCounts& so_far, int64_t total)>;

// The SQLite file `from` names: `from` itself, or <from>/state.db for a folder.
std::string SqliteSourcePath(const std::string& from);

// Runs the copy. Errors as values, each saying what was (or was not) done:
// kInvalid for a `to` that is no PostgreSQL URL, a source in use, or a target
// that holds jobs without `merge`; kNotFound for a missing source; kIo for a
// damaged source or an unreachable target.
Result<ImportCounts> MigrateSqliteToPostgres(const MigrationOptions& options, const MigrationProgress& progress);

}  // namespace tessera::store
