// Writing rows another store already holds into PostgreSQL, as they are: the
// target side of `tessera store migrate` (store_migration.h).
//
// Unlike the store interfaces, which create new jobs (queued, a fresh seq), an
// import keeps every field a row had — status, attempts, timestamps, lane,
// error — and its ids. Each call is one transaction, and rows whose id the
// database already holds are skipped (and counted), never overwritten, so an
// interrupted import is finished by running it again.
//
// seq: jobs and batches get new sequence numbers from the target's identity
// columns, in the order they are given; the migration gives them in the source's
// seq order, so FIFO order among them holds (after any jobs the target held).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "store/batch.h"
#include "store/job.h"
#include "store/job_store.h"
#include "store/pg_connection.h"
#include "util/status.h"

namespace tessera::store {

struct RowCounts {
  int64_t copied = 0;
  int64_t skipped = 0;  // already in the target
};

struct ImportCounts {
  RowCounts jobs, webhooks, webhook_attempts, batches, batch_images;
  void Add(const ImportCounts& other);
};

// A job with what is kept with it, deleted with it in either store.
struct JobWithHistory {
  Job job;
  std::vector<WebhookRegistration> webhooks;     // registrations for this job only
  std::vector<WebhookAttemptRecord> attempts;    // oldest first
};

class PostgresImport {
 public:
  // Connects to `conninfo` and brings its schema to this build's version (the
  // same migrations, under the same advisory lock, as the store's Open).
  static Result<std::unique_ptr<PostgresImport>> Open(const std::string& conninfo);

  Result<int64_t> JobCount();
  // One transaction: each job not already present (by id), with its webhook
  // registrations and delivery attempts. A job that is present is skipped with
  // its registrations and attempts (they came with it). Failpoint (tests):
  // "store.import_jobs" fails the call after every row is written, before COMMIT.
  Result<ImportCounts> ImportJobs(const std::vector<JobWithHistory>& jobs);
  // One transaction: registrations for every job (job_id empty). One with the
  // same url and created_ms already present is skipped.
  Result<ImportCounts> ImportGlobalWebhooks(const std::vector<WebhookRegistration>& registrations);
  // One transaction: the batch and its images, unless a batch with its id is
  // already present (then all of it is skipped).
  Result<ImportCounts> ImportBatch(const Batch& batch, const std::vector<BatchImage>& images);

 private:
  explicit PostgresImport(std::unique_ptr<pg::PgConnection> connection) : connection_(std::move(connection)) {}
  std::unique_ptr<pg::PgConnection> connection_;
};

}  // namespace tessera::store
