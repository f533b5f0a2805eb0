#include "store/postgres_job_store.h"

#include <algorithm>

#include "store/pg_migrations.h"
#include "store/pg_statements.h"
#include "store/store_checks.h"
#include "store/store_rows.h"
#include "util/log.h"

namespace tessera::store {

using namespace rows;
using namespace checks;
using pg::PgConnection;
using pg::PgParams;
using pg::PgResult;
using pg::PgRow;

namespace {

const std::string& InsertJobSql() {
  static const std::string sql = pg::JobInsertSql() + " RETURNING seq";
  return sql;
}

}  // namespace

int PostgresJobStore::LatestSchemaVersion() { return pg::LatestSchemaVersion(); }

PostgresJobStore::PostgresJobStore(const std::string& conninfo, PostgresOptions options)
    : pool_(conninfo, options.max_connections) {}

Result<std::unique_ptr<PostgresJobStore>> PostgresJobStore::Open(const std::string& conninfo,
                                                                 PostgresOptions options) {
  const std::string where = "PostgreSQL store " + pg::RedactConninfo(conninfo);
  std::unique_ptr<PostgresJobStore> store(new PostgresJobStore(conninfo, options));
  int applied = 0;
  {
    auto connection = store->pool_.Acquire("open the PostgreSQL store");
    if (!connection.ok()) return connection.status();
    auto migrated = pg::Migrate(**connection, where);
    if (!migrated.ok()) return migrated.status();
    applied = *migrated;
  }
  LogInfo("job_store_open")
      .Field("store", pg::RedactConninfo(conninfo))
      .Field("schema_version", LatestSchemaVersion())
      .Field("migrations_applied", applied);
  return store;
}

Result<int64_t> PostgresJobStore::InsertJob(PgConnection& connection, const Job& job) {
  if (job.id.empty()) return InvalidError("insert job: empty id");
  const std::string operation = "insert job " + job.id;
  if (!ValidProgress(job.progress)) return InvalidError(ProgressOutOfRange(operation, job.progress));
  PgParams params;
  params.Text(job.id).Text(JobKindName(job.kind)).Int(job.created_ms);
  BindMutableFields(params, job);
  auto inserted = connection.Exec(operation, InsertJobSql(), params);
  if (!inserted.ok()) {
    if (inserted.status().code() == StatusCode::kInvalid) {
      return InvalidError(operation + ": a job with this id already exists");
    }
    return inserted.status();
  }
  return inserted->Int(0, 0);
}

Status PostgresJobStore::UpdateJob(PgConnection& connection, const Job& job) {
  const std::string operation = "update job " + job.id;
  if (!ValidProgress(job.progress)) return InvalidError(ProgressOutOfRange(operation, job.progress));
  PgParams params;
  BindMutableFields(params, job);
  params.Text(job.id);
  auto updated = connection.Exec(operation, pg::JobUpdateSql(), params);
  if (!updated.ok()) return updated.status();
  if (updated->AffectedRows() == 0) return NotFoundError(operation + ": no such job");
  return Status::Ok();
}

Result<int64_t> PostgresJobStore::Insert(const Job& job) {
  auto connection = pool_.Acquire("insert job " + job.id);
  if (!connection.ok()) return connection.status();
  return InsertJob(**connection, job);
}

Result<Job> PostgresJobStore::Get(const std::string& id) {
  const std::string operation = "get job " + id;
  static const std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = $1";
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto result = (*connection)->Exec(operation, sql, PgParams().Text(id));
  if (!result.ok()) return result.status();
  if (result->rows() == 0) return NotFoundError(operation + ": no such job");
  return ReadJob(PgRow(*result, 0), operation);
}

Status PostgresJobStore::Update(const Job& job) {
  auto connection = pool_.Acquire("update job " + job.id);
  if (!connection.ok()) return connection.status();
  return UpdateJob(**connection, job);
}

Status PostgresJobStore::UpdateAll(const std::vector<Job>& jobs) {
  const std::string operation = "update " + std::to_string(jobs.size()) + " jobs";
  for (const Job& job : jobs) {
    if (!ValidProgress(job.progress)) return InvalidError(ProgressOutOfRange(operation, job.progress));
  }
  if (jobs.empty()) return Status::Ok();
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  return (*connection)->InTransaction(operation, [&]() -> Status {
    for (const Job& job : jobs) {
      if (Status s = UpdateJob(**connection, job); !s.ok()) return s;
    }
    return Status::Ok();
  });
}

Status PostgresJobStore::UpdateProgress(const std::string& id, double progress) {
  const std::string operation = "update progress of job " + id;
  if (!ValidProgress(progress)) return InvalidError(ProgressOutOfRange(operation, progress));
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto updated =
      (*connection)->Exec(operation, "UPDATE jobs SET progress = $1 WHERE id = $2", PgParams().Real(progress).Text(id));
  if (!updated.ok()) return updated.status();
  if (updated->AffectedRows() == 0) return NotFoundError(operation + ": no such job");
  return Status::Ok();
}

Result<std::vector<Job>> PostgresJobStore::List(const JobFilter& filter) {
  const std::string operation = "list jobs";
  if (filter.limit < 0) return InvalidError(operation + ": negative limit " + std::to_string(filter.limit));

  // The SQL text depends only on which filters are present; values are bound.
  PgParams params;
  std::string where;
  auto add_condition = [&](const std::string& condition) {
    where += where.empty() ? " WHERE " : " AND ";
    where += condition;
  };
  auto next = [&] { return "$" + std::to_string(params.size()); };
  auto status_names = [](const std::vector<JobStatus>& statuses) {
    std::vector<std::string> names;
    for (JobStatus status : statuses) names.emplace_back(JobStatusName(status));
    return names;
  };

  if (!filter.ids.empty()) {
    params.TextArray(filter.ids);
    add_condition("id = ANY(" + next() + "::text[])");
  }
  if (!filter.statuses.empty()) {
    params.TextArray(status_names(filter.statuses));
    add_condition("status = ANY(" + next() + "::text[])");
  }
  if (filter.kind) {
    params.Text(JobKindName(*filter.kind));
    add_condition("kind = " + next());
  }
  if (filter.prompt) {
    params.Text(*filter.prompt);
    add_condition("prompt = " + next());
  }
  if (filter.filename) {
    params.Text(*filter.filename);
    add_condition("filename = " + next());
  }
  if (filter.search) {
    // strpos, not LIKE: the text is matched as is, '%' and '_' included. lower()
    // folds ASCII letters like SQLite's (the test cluster's C locale; a database
    // with another locale also folds its letters).
    params.Text(*filter.search);
    const std::string text = "lower(" + next() + "::text)";
    add_condition("(strpos(lower(id), " + text + ") > 0 OR strpos(lower(prompt), " + text +
                  ") > 0 OR strpos(lower(filename), " + text + ") > 0)");
  }
  if (filter.finished_before_ms) {
    params.TextArray(status_names({JobStatus::kSuccess, JobStatus::kError, JobStatus::kCanceled}));
    add_condition("status = ANY(" + next() + "::text[])");
    params.Int(*filter.finished_before_ms);
    add_condition("finished_ms < " + next() + "::bigint");
  }
  if (filter.after_seq) {
    params.Int(*filter.after_seq);
    add_condition(std::string(filter.newest_first ? "seq < " : "seq > ") + next() + "::bigint");
  }
  // LIMIT NULL is PostgreSQL's "no limit".
  if (filter.limit > 0) {
    params.Int(filter.limit);
  } else {
    params.Null();
  }
  const std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs" + where + " ORDER BY seq" +
                          (filter.newest_first ? " DESC" : " ASC") + " LIMIT " + next() + "::bigint";

  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto result = (*connection)->Exec(operation, sql, params);
  if (!result.ok()) return result.status();
  return pg::ReadJobs(*result, operation);
}

Result<int64_t> PostgresJobStore::Delete(const std::vector<std::string>& ids) {
  if (ids.empty()) return int64_t{0};
  const std::string operation = "delete " + std::to_string(ids.size()) + " jobs";
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  // One statement: all rows go, or none do.
  auto deleted = (*connection)->Exec(operation, "DELETE FROM jobs WHERE id = ANY($1::text[])", PgParams().TextArray(ids));
  if (!deleted.ok()) return deleted.status();
  return deleted->AffectedRows();
}

Result<std::map<JobStatus, int64_t>> PostgresJobStore::CountByStatus() {
  const std::string operation = "count jobs by status";
  std::map<JobStatus, int64_t> counts;
  for (JobStatus status :
       {JobStatus::kQueued, JobStatus::kRunning, JobStatus::kSuccess, JobStatus::kError, JobStatus::kCanceled}) {
    counts[status] = 0;
  }
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto result = (*connection)->Exec(operation, "SELECT status, COUNT(*) FROM jobs GROUP BY status");
  if (!result.ok()) return result.status();
  for (int row = 0; row < result->rows(); ++row) {
    std::string name = result->Text(row, 0);
    std::optional<JobStatus> status = ParseJobStatus(name);
    if (!status) return IoError(operation + ": unknown status '" + name + "' in the jobs table");
    counts[*status] = result->Int(row, 1);
  }
  return counts;
}

Result<std::vector<double>> PostgresJobStore::RecentDurations(const std::string& lane, JobKind kind, int limit) {
  const std::string operation = "recent durations of " + std::string(JobKindName(kind)) + " jobs on lane " + lane;
  if (limit < 0) return InvalidError(operation + ": negative limit " + std::to_string(limit));
  // Rows without a start time, or finishing before they started, would poison the
  // moving average; they are skipped.
  static const std::string sql =
      "SELECT finished_ms - started_ms FROM jobs "
      "WHERE lane = $1 AND kind = $2 AND status = $3 AND started_ms > 0 AND finished_ms >= started_ms "
      "ORDER BY finished_ms DESC, seq DESC LIMIT $4::bigint";
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto result = (*connection)->Exec(
      operation, sql,
      PgParams().Text(lane).Text(JobKindName(kind)).Text(JobStatusName(JobStatus::kSuccess)).Int(limit));
  if (!result.ok()) return result.status();
  std::vector<double> durations;
  for (int row = 0; row < result->rows(); ++row) durations.push_back(static_cast<double>(result->Int(row, 0)) / 1000.0);
  return durations;
}

Result<int64_t> PostgresJobStore::AddWebhook(const WebhookRegistration& registration) {
  const std::string operation =
      "add webhook " + registration.url + (registration.job_id.empty() ? "" : " for job " + registration.job_id);
  if (registration.url.empty()) return InvalidError(operation + ": empty url");
  PgParams params;
  params.Text(registration.url);
  if (registration.job_id.empty()) {
    params.Null();
  } else {
    params.Text(registration.job_id);
  }
  params.Int(registration.created_ms);
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto inserted = (*connection)->Exec(
      operation, "INSERT INTO webhooks(url, job_id, created_ms) VALUES($1, $2, $3) RETURNING id", params);
  if (!inserted.ok()) {
    if (inserted.status().code() == StatusCode::kNotFound) return NotFoundError(operation + ": no such job");
    return inserted.status();
  }
  return inserted->Int(0, 0);
}

Result<std::vector<WebhookRegistration>> PostgresJobStore::WebhooksFor(const std::string& job_id) {
  const std::string operation = "webhooks for job " + job_id;
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto result = (*connection)->Exec(
      operation,
      "SELECT id, url, COALESCE(job_id, ''), created_ms FROM webhooks WHERE job_id IS NULL OR job_id = $1 ORDER BY id",
      PgParams().Text(job_id));
  if (!result.ok()) return result.status();
  std::vector<WebhookRegistration> registrations;
  for (int row = 0; row < result->rows(); ++row) {
    registrations.push_back({result->Int(row, 0), result->Text(row, 1), result->Text(row, 2), result->Int(row, 3)});
  }
  return registrations;
}

Status PostgresJobStore::AddWebhookAttempt(const WebhookAttemptRecord& attempt) {
  const std::string operation =
      "record webhook attempt " + std::to_string(attempt.attempt) + " for job " + attempt.job_id;
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto inserted = (*connection)->Exec(operation, pg::kWebhookAttemptInsertSql, pg::WebhookAttemptParams(attempt));
  if (!inserted.ok() && inserted.status().code() == StatusCode::kNotFound) {
    return NotFoundError(operation + ": no such job");
  }
  return inserted.status();
}

Result<std::vector<WebhookAttemptRecord>> PostgresJobStore::WebhookAttempts(const std::string& job_id, int64_t limit) {
  const std::string operation = "webhook attempts of job " + job_id;
  if (limit <= 0) return InvalidError(operation + ": limit must be positive");
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto result = (*connection)->Exec(operation,
                                    "SELECT delivery_id, job_id, url, event, attempt, delivered, final, error, at_ms "
                                    "FROM webhook_attempts WHERE job_id = $1 ORDER BY seq DESC LIMIT $2::bigint",
                                    PgParams().Text(job_id).Int(limit));
  if (!result.ok()) return result.status();
  std::vector<WebhookAttemptRecord> attempts;
  for (int row = 0; row < result->rows(); ++row) {
    WebhookAttemptRecord attempt;
    attempt.delivery_id = result->Text(row, 0);
    attempt.job_id = result->Text(row, 1);
    attempt.url = result->Text(row, 2);
    attempt.event = result->Text(row, 3);
    attempt.attempt = static_cast<int>(result->Int(row, 4));
    attempt.delivered = result->Text(row, 5) == "t";
    attempt.final = result->Text(row, 6) == "t";
    attempt.error = result->Text(row, 7);
    attempt.at_ms = result->Int(row, 8);
    attempts.push_back(std::move(attempt));
  }
  return attempts;
}

}  // namespace tessera::store
