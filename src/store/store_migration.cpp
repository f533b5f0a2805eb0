#include "store/store_migration.h"

#include <algorithm>
#include <filesystem>
#include <limits>

#include "store/pg_connection.h"
#include "store/sqlite_job_store.h"
#include "store/sqlite_source_check.h"
#include "store/store_factory.h"

namespace tessera::store {
namespace {

// Every attempt of a job: WebhookAttempts wants a limit.
constexpr int64_t kAllAttempts = std::numeric_limits<int32_t>::max();
constexpr int64_t kBatchesPerRead = 100;

Result<JobWithHistory> ReadHistory(Store& source, const Job& job) {
  JobWithHistory entry{job, {}, {}};
  auto registrations = source.WebhooksFor(job.id);
  if (!registrations.ok()) return registrations.status();
  for (const WebhookRegistration& registration : *registrations) {
    // WebhooksFor also answers the registrations for every job: copied once, apart.
    if (registration.job_id == job.id) entry.webhooks.push_back(registration);
  }
  auto attempts = source.WebhookAttempts(job.id, kAllAttempts);
  if (!attempts.ok()) return attempts.status();
  entry.attempts.assign(attempts->rbegin(), attempts->rend());  // newest first -> in the order they were made
  return entry;
}

Result<int64_t> CountJobs(Store& source) {
  auto counts = source.CountByStatus();
  if (!counts.ok()) return counts.status();
  int64_t total = 0;
  for (const auto& [status, count] : *counts) total += count;
  return total;
}

Status CopyJobs(Store& source, PostgresImport& target, const MigrationOptions& options,
                const MigrationProgress& progress, ImportCounts& counts) {
  auto total = CountJobs(source);
  if (!total.ok()) return total.status();
  JobFilter page;
  page.limit = options.jobs_per_transaction;
  while (true) {
    auto jobs = source.List(page);  // seq order: the target's seqs follow it
    if (!jobs.ok()) return jobs.status();
    if (jobs->empty()) break;
    std::vector<JobWithHistory> chunk;
    for (const Job& job : *jobs) {
      auto entry = ReadHistory(source, job);
      if (!entry.ok()) return entry.status();
      chunk.push_back(std::move(entry).value());
    }
    auto imported = target.ImportJobs(chunk);
    if (!imported.ok()) return imported.status();
    counts.Add(*imported);
    page.after_seq = jobs->back().seq;
    if (progress) progress("jobs", counts.jobs, *total);
  }
  return Status::Ok();
}

Status CopyBatches(Store& source, PostgresImport& target, const MigrationProgress& progress, ImportCounts& counts) {
  std::vector<Batch> batches;  // newest first as listed; copied oldest first
  int64_t before_seq = 0;
  while (true) {
    auto listed = source.ListBatches("", before_seq, kBatchesPerRead);
    if (!listed.ok()) return listed.status();
    if (listed->empty()) break;
    before_seq = listed->back().seq;
    batches.insert(batches.end(), listed->begin(), listed->end());
  }
  std::reverse(batches.begin(), batches.end());
  for (const Batch& batch : batches) {
    auto rows = source.ListBatchImages(batch.id);
    if (!rows.ok()) return rows.status();
    std::vector<BatchImage> images;
    for (const BatchImageRow& row : *rows) images.push_back(row.image);
    auto imported = target.ImportBatch(batch, images);
    if (!imported.ok()) return imported.status();
    counts.Add(*imported);
    if (progress) progress("batches", counts.batches, static_cast<int64_t>(batches.size()));
  }
  return Status::Ok();
}

}  // namespace

std::string SqliteSourcePath(const std::string& from) {
  std::error_code error;
  if (std::filesystem::is_directory(from, error)) return (std::filesystem::path(from) / "state.db").string();
  return from;
}

Result<ImportCounts> MigrateSqliteToPostgres(const MigrationOptions& options, const MigrationProgress& progress) {
  if (!IsPostgresUrl(options.to)) {
    return InvalidError("--to must be a postgresql:// (or postgres://) URL, not '" + pg::RedactConninfo(options.to) + "'");
  }
  if (options.jobs_per_transaction <= 0) return InvalidError("jobs per transaction must be positive");
  const std::string path = SqliteSourcePath(options.from);
  // Before anything is opened for writing: in use, or damaged, and nothing is written.
  if (Status usable = CheckSqliteSource(path); !usable.ok()) return usable;
  auto source = SqliteJobStore::Open(path);
  if (!source.ok()) return source.status();
  auto target = PostgresImport::Open(options.to);
  if (!target.ok()) return target.status();

  auto held = (*target)->JobCount();
  if (!held.ok()) return held.status();
  if (*held > 0 && !options.merge) {
    return InvalidError("the target database already holds " + std::to_string(*held) +
                        " jobs; nothing was copied. Use --merge to add this store's rows to them "
                        "(rows whose id it already holds are skipped)");
  }

  ImportCounts counts;
  auto global = (*source)->WebhooksFor("");  // "" is no job's id: the registrations for every job
  if (!global.ok()) return global.status();
  auto imported = (*target)->ImportGlobalWebhooks(*global);
  if (!imported.ok()) return imported.status();
  counts.Add(*imported);
  if (progress) progress("webhooks (every job)", counts.webhooks, static_cast<int64_t>(global->size()));
  if (Status copied = CopyJobs(**source, **target, options, progress, counts); !copied.ok()) return copied;
  if (Status copied = CopyBatches(**source, **target, progress, counts); !copied.ok()) return copied;
  return counts;
}

}  // namespace tessera::store
