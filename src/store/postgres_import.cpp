#include "store/postgres_import.h"

#include "store/pg_migrations.h"
#include "store/pg_statements.h"
#include "store/store_checks.h"
#include "store/store_rows.h"
#include "util/failpoint.h"

namespace tessera::store {

using pg::PgConnection;
using pg::PgParams;

namespace {

void AddCounts(RowCounts& into, const RowCounts& other) {
  into.copied += other.copied;
  into.skipped += other.skipped;
}

Status InsertWebhook(PgConnection& db, const std::string& operation, const WebhookRegistration& registration) {
  auto inserted = db.Exec(operation, "INSERT INTO webhooks(url, job_id, created_ms) VALUES($1, $2, $3)",
                          PgParams().Text(registration.url).Text(registration.job_id).Int(registration.created_ms));
  return inserted.status();
}

Status InsertAttempt(PgConnection& db, const std::string& operation, const WebhookAttemptRecord& attempt) {
  auto inserted = db.Exec(operation, pg::kWebhookAttemptInsertSql, pg::WebhookAttemptParams(attempt));
  return inserted.status();
}

}  // namespace

void ImportCounts::Add(const ImportCounts& other) {
  AddCounts(jobs, other.jobs);
  AddCounts(webhooks, other.webhooks);
  AddCounts(webhook_attempts, other.webhook_attempts);
  AddCounts(batches, other.batches);
  AddCounts(batch_images, other.batch_images);
}

Result<std::unique_ptr<PostgresImport>> PostgresImport::Open(const std::string& conninfo) {
  auto connection = PgConnection::Connect(conninfo);
  if (!connection.ok()) return connection.status();
  auto migrated = pg::Migrate(**connection, "PostgreSQL store " + pg::RedactConninfo(conninfo));
  if (!migrated.ok()) return migrated.status();
  return std::unique_ptr<PostgresImport>(new PostgresImport(std::move(connection).value()));
}

Result<int64_t> PostgresImport::JobCount() {
  auto counted = connection_->Exec("count the target's jobs", "SELECT COUNT(*) FROM jobs");
  if (!counted.ok()) return counted.status();
  return counted->Int(0, 0);
}

Result<ImportCounts> PostgresImport::ImportJobs(const std::vector<JobWithHistory>& jobs) {
  static const std::string sql = pg::JobInsertSql() + " ON CONFLICT (id) DO NOTHING";
  const std::string operation = "import " + std::to_string(jobs.size()) + " jobs";
  for (const JobWithHistory& entry : jobs) {
    if (!checks::ValidProgress(entry.job.progress)) {
      return InvalidError(checks::ProgressOutOfRange(operation + ": job " + entry.job.id, entry.job.progress));
    }
  }
  ImportCounts counts;
  PgConnection& db = *connection_;
  Status status = db.InTransaction(operation, [&]() -> Status {
    for (const JobWithHistory& entry : jobs) {
      const Job& job = entry.job;
      PgParams values;
      values.Text(job.id).Text(JobKindName(job.kind)).Int(job.created_ms);
      rows::BindMutableFields(values, job);
      auto inserted = db.Exec(operation + ": job " + job.id, sql, values);
      if (!inserted.ok()) return inserted.status();
      if (inserted->AffectedRows() == 0) {
        counts.jobs.skipped += 1;
        counts.webhooks.skipped += static_cast<int64_t>(entry.webhooks.size());
        counts.webhook_attempts.skipped += static_cast<int64_t>(entry.attempts.size());
        continue;
      }
      counts.jobs.copied += 1;
      for (const WebhookRegistration& registration : entry.webhooks) {
        if (Status s = InsertWebhook(db, operation + ": webhook of job " + job.id, registration); !s.ok()) return s;
        counts.webhooks.copied += 1;
      }
      for (const WebhookAttemptRecord& attempt : entry.attempts) {
        if (Status s = InsertAttempt(db, operation + ": webhook attempt of job " + job.id, attempt); !s.ok()) return s;
        counts.webhook_attempts.copied += 1;
      }
    }
    if (FailpointHit("store.import_jobs")) {
      return IoError(operation + ": injected failure (failpoint store.import_jobs)");
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return counts;
}

Result<ImportCounts> PostgresImport::ImportGlobalWebhooks(const std::vector<WebhookRegistration>& registrations) {
  // No unique key to conflict on (ids are the target's own): the same url
  // registered at the same millisecond is taken to be this registration.
  static const std::string sql =
      "INSERT INTO webhooks(url, job_id, created_ms) SELECT $1::text, NULL, $2::bigint WHERE NOT EXISTS "
      "(SELECT 1 FROM webhooks WHERE job_id IS NULL AND url = $1::text AND created_ms = $2::bigint)";
  const std::string operation = "import " + std::to_string(registrations.size()) + " webhook registrations";
  ImportCounts counts;
  PgConnection& db = *connection_;
  Status status = db.InTransaction(operation, [&]() -> Status {
    for (const WebhookRegistration& registration : registrations) {
      auto inserted = db.Exec(operation, sql, PgParams().Text(registration.url).Int(registration.created_ms));
      if (!inserted.ok()) return inserted.status();
      (inserted->AffectedRows() == 0 ? counts.webhooks.skipped : counts.webhooks.copied) += 1;
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return counts;
}

Result<ImportCounts> PostgresImport::ImportBatch(const Batch& batch, const std::vector<BatchImage>& images) {
  static const std::string sql = pg::BatchInsertSql() + " ON CONFLICT (id) DO NOTHING";
  const std::string operation = "import batch " + batch.id;
  ImportCounts counts;
  PgConnection& db = *connection_;
  Status status = db.InTransaction(operation, [&]() -> Status {
    PgParams values;
    rows::BindBatch(values, batch);
    auto inserted = db.Exec(operation, sql, values);
    if (!inserted.ok()) return inserted.status();
    if (inserted->AffectedRows() == 0) {
      counts.batches.skipped = 1;
      counts.batch_images.skipped = static_cast<int64_t>(images.size());
      return Status::Ok();
    }
    counts.batches.copied = 1;
    for (const BatchImage& image : images) {
      PgParams image_values;
      rows::BindImage(image_values, image, batch.id);
      auto row = db.Exec(operation + ": image " + image.id, pg::ImageInsertSql(), image_values);
      if (!row.ok()) return row.status();
      counts.batch_images.copied += 1;
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return counts;
}

}  // namespace tessera::store
