#include "store/sqlite_job_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <variant>

#include "store/sqlite_rows.h"
#include "store/store_checks.h"
#include "util/failpoint.h"
#include "util/log.h"

namespace tessera::store {

using namespace sqlite_detail;
using namespace rows;
using namespace checks;

namespace {

// One step of the schema's history. A released step is frozen: never edit one,
// append the next. Each runs in its own transaction, together with the row in
// schema_migrations that records it.
struct Migration {
  int version;
  const char* description;
  const char* sql;
};

constexpr Migration kMigrations[] = {
    {1, "jobs and webhooks", R"sql(
CREATE TABLE jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: never reused, even after deletes
  id TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  prompt TEXT NOT NULL DEFAULT '',
  params_json TEXT NOT NULL DEFAULT '{}',
  input_path TEXT NOT NULL DEFAULT '',
  filename TEXT NOT NULL DEFAULT '',
  webhook_url TEXT NOT NULL DEFAULT '',
  client TEXT NOT NULL DEFAULT '',
  lane TEXT NOT NULL DEFAULT '',
  gpu_id INTEGER NOT NULL DEFAULT -1,
  attempts INTEGER NOT NULL DEFAULT 0,
  progress REAL NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL DEFAULT 0,
  started_ms INTEGER NOT NULL DEFAULT 0,
  finished_ms INTEGER NOT NULL DEFAULT 0
);
-- The queue and status listings, in submission order.
CREATE INDEX jobs_status_seq ON jobs(status, seq);
CREATE INDEX jobs_prompt ON jobs(prompt);
CREATE INDEX jobs_filename ON jobs(filename);
-- RecentDurations: equality on lane, kind and status, newest finish first.
CREATE INDEX jobs_lane_kind_finished ON jobs(lane, kind, status, finished_ms);

CREATE TABLE webhooks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  url TEXT NOT NULL,
  job_id TEXT REFERENCES jobs(id) ON DELETE CASCADE,  -- NULL: every job
  created_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhooks_job_id ON webhooks(job_id);
)sql"},
    {2, "image batches", R"sql(
ALTER TABLE jobs ADD COLUMN batch_id TEXT NOT NULL DEFAULT '';
CREATE INDEX jobs_batch_id ON jobs(batch_id);

CREATE TABLE batches (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order
  id TEXT NOT NULL UNIQUE,
  game_id TEXT NOT NULL DEFAULT '',
  total_images INTEGER NOT NULL DEFAULT 0,
  max_retries INTEGER NOT NULL DEFAULT 0,
  params_json TEXT NOT NULL DEFAULT '{}',
  webhook_url TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL DEFAULT 0,
  notified_ms INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE batch_images (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order
  id TEXT NOT NULL UNIQUE,
  batch_id TEXT NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  original_name TEXT NOT NULL DEFAULT '',
  input_path TEXT NOT NULL DEFAULT '',
  -- No foreign key: retention may delete a finished job its image still names.
  job_id TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 1,
  retry_at_ms INTEGER NOT NULL DEFAULT 0  -- 0: no retry scheduled
);
-- Upload order within a batch; one image per position.
CREATE UNIQUE INDEX batch_images_batch_position ON batch_images(batch_id, position);
-- ImageForJob, and UnsettledBatchIds from the queued and running jobs.
CREATE INDEX batch_images_job_id ON batch_images(job_id);
-- ImagesDueForRetry and NextImageRetryMs.
CREATE INDEX batch_images_retry_at ON batch_images(retry_at_ms);
-- UnnotifiedBatchIds: only the batches not notified yet, which are few.
CREATE INDEX batches_unnotified ON batches(seq) WHERE notified_ms = 0;
)sql"},
    {3, "webhook delivery attempts", R"sql(
CREATE TABLE webhook_attempts (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  delivery_id TEXT NOT NULL,
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  url TEXT NOT NULL,
  event TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  delivered INTEGER NOT NULL,
  final INTEGER NOT NULL,
  error TEXT NOT NULL DEFAULT '',
  at_ms INTEGER NOT NULL
);
-- WebhookAttempts: one job's, newest first.
CREATE INDEX webhook_attempts_job ON webhook_attempts(job_id, seq);
)sql"},
    {4, "the node a job runs on", R"sql(
-- A cluster's node (docs/cluster.md); a server on SQLite is a cluster of one
-- and leaves it empty, but keeps what an import or a Job carries.
ALTER TABLE jobs ADD COLUMN node TEXT NOT NULL DEFAULT '';
)sql"},
};

}  // namespace

int SqliteJobStore::LatestSchemaVersion() { return std::end(kMigrations)[-1].version; }

SqliteJobStore::SqliteJobStore(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

SqliteJobStore::~SqliteJobStore() {
  for (auto& [sql, statement] : statements_) sqlite3_finalize(statement);
  if (int rc = sqlite3_close(db_); rc != SQLITE_OK) {
    LogWarn("job_store_close_failed").Field("path", path_).Field("error", sqlite3_errstr(rc));
  }
}

Result<std::unique_ptr<SqliteJobStore>> SqliteJobStore::Open(const std::string& path) {
  if (path.empty()) return InvalidError("open job store: empty path");
  const std::string operation = "open job store " + path;
  if (path != ":memory:") {
    std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) {
      std::error_code error;
      std::filesystem::create_directories(parent, error);
      if (error) return IoError(operation + ": create directory " + parent.string() + ": " + error.message());
    }
  }

  sqlite3* db = nullptr;
  // NOMUTEX: the store's own mutex serialises every use of the connection.
  int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  // Owned from here on, so the handle is closed on every return, even when the
  // open failed (SQLite hands one back to read the message from).
  std::unique_ptr<SqliteJobStore> store(new SqliteJobStore(path, db));
  if (rc != SQLITE_OK) return store->SqlError(operation);

  std::lock_guard lock(store->mu_);
  Status configured = store->Configure();
  if (!configured.ok()) return Status(configured.code(), operation + ": " + configured.message());
  Result<int> applied = store->Migrate();
  if (!applied.ok()) return Status(applied.status().code(), operation + ": " + applied.status().message());
  LogInfo("job_store_open")
      .Field("path", path)
      .Field("schema_version", LatestSchemaVersion())
      .Field("migrations_applied", *applied);
  return store;
}

Status SqliteJobStore::Configure() {
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, 5000);
  // The first statement that reads the file: a file that is not a database fails
  // here, with "file is not a database".
  Result<sqlite3_stmt*> journal = Prepare("set WAL journal", "PRAGMA journal_mode = WAL");
  if (!journal.ok()) return journal.status();
  std::string mode;
  {
    BoundStatement statement(*journal);
    if (statement.Step() != SQLITE_ROW) return SqlError("set WAL journal");
    mode = statement.ColumnText(0);
  }
  // An in-memory database reports "memory"; anything else means WAL is not
  // available here (some network file systems) and readers block writers.
  if (mode != "wal" && path_ != ":memory:") {
    LogWarn("job_store_no_wal").Field("path", path_).Field("journal_mode", mode);
  }
  // NORMAL by default: in WAL mode a commit then survives a crash of this process
  // but may be lost on a power cut. That is fine for state changes (running,
  // finished, progress): lost, the job is requeued and runs again. The writes a
  // client is told about — a new job, a batch, a retry, a webhook — run under
  // FullSync (below), and syncing the WAL then also syncs every earlier commit.
  if (Status s = Exec("set synchronous", "PRAGMA synchronous = NORMAL"); !s.ok()) return s;
  return Exec("enable foreign keys", "PRAGMA foreign_keys = ON");
}

Result<int> SqliteJobStore::Migrate() {
  if (Status s = Exec("create schema_migrations",
                      "CREATE TABLE IF NOT EXISTS schema_migrations(version INTEGER PRIMARY KEY, applied_ms INTEGER)");
      !s.ok()) {
    return s;
  }
  const std::string read_version_sql = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations";
  auto read_version = [&]() -> Result<int64_t> {
    Result<sqlite3_stmt*> prepared = Prepare("read schema version", read_version_sql);
    if (!prepared.ok()) return prepared.status();
    BoundStatement statement(*prepared);
    if (statement.Step() != SQLITE_ROW) return SqlError("read schema version");
    return statement.ColumnInt(0);
  };

  Result<int64_t> version = read_version();
  if (!version.ok()) return version.status();
  if (*version > LatestSchemaVersion()) {
    return Status(StatusCode::kUnsupported,
                  "schema version " + std::to_string(*version) + " is newer than this build knows (" +
                      std::to_string(LatestSchemaVersion()) +
                      "); it was written by a newer tessera: upgrade, or point this one at another database file");
  }

  int applied = 0;
  for (const Migration& migration : kMigrations) {
    if (migration.version <= *version) continue;
    const std::string operation = "migrate to schema version " + std::to_string(migration.version);
    // IMMEDIATE takes the write lock before re-reading the version, so two
    // processes opening one new file cannot both apply the same step.
    if (Status s = Exec(operation, "BEGIN IMMEDIATE"); !s.ok()) return s;
    auto rollback = [&](Status status) {
      Exec(operation, "ROLLBACK");
      return status;
    };
    Result<int64_t> current = read_version();
    if (!current.ok()) return rollback(current.status());
    if (*current < migration.version) {
      if (Status s = Exec(operation, migration.sql); !s.ok()) return rollback(s);
      Result<sqlite3_stmt*> record =
          Prepare(operation, "INSERT INTO schema_migrations(version, applied_ms) VALUES(?, ?)");
      if (!record.ok()) return rollback(record.status());
      BoundStatement statement(*record);
      if (statement.Int(migration.version).Int(NowMs()).Step() != SQLITE_DONE) return rollback(SqlError(operation));
    }
    if (Status s = Exec(operation, "COMMIT"); !s.ok()) return rollback(s);
    if (*current < migration.version) {
      ++applied;
      LogInfo("job_store_migrated")
          .Field("path", path_)
          .Field("version", migration.version)
          .Field("description", migration.description);
    }
  }
  return applied;
}

Status SqliteJobStore::Exec(std::string_view operation, const char* sql) {
  if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) return SqlError(operation);
  return Status::Ok();
}

Status SqliteJobStore::InTransaction(std::string_view operation, const std::function<Status()>& body) {
  if (Status s = Exec(operation, "BEGIN IMMEDIATE"); !s.ok()) return s;
  Status result = body();
  if (result.ok()) result = Exec(operation, "COMMIT");
  // After a failed COMMIT the transaction may still be open (SQLITE_BUSY) or
  // already rolled back by SQLite; ROLLBACK covers the first and is a harmless
  // error in the second.
  if (!result.ok()) Exec(operation, "ROLLBACK");
  return result;
}

Result<sqlite3_stmt*> SqliteJobStore::Prepare(std::string_view operation, const std::string& sql) {
  if (auto it = statements_.find(sql); it != statements_.end()) return it->second;
  sqlite3_stmt* statement = nullptr;
  if (sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size() + 1), SQLITE_PREPARE_PERSISTENT, &statement,
                         nullptr) != SQLITE_OK) {
    return SqlError(operation);
  }
  statements_.emplace(sql, statement);
  return statement;
}

Status SqliteJobStore::SqlError(std::string_view operation, StatusCode code) const {
  return Status(code, std::string(operation) + ": " + sqlite3_errmsg(db_));
}


Result<int64_t> SqliteJobStore::Insert(const Job& job) {
  std::lock_guard lock(mu_);
  FullSync durable(db_);
  return InsertJob(job);
}

Result<int64_t> SqliteJobStore::InsertJob(const Job& job) {
  if (job.id.empty()) return InvalidError("insert job: empty id");
  const std::string operation = "insert job " + job.id;
  if (!ValidProgress(job.progress)) return InvalidError(ProgressOutOfRange(operation, job.progress));
  static const std::string sql = [] {
    std::string columns = "id, kind, created_ms";
    std::string values = "?, ?, ?";
    for (const char* column : kMutableColumns) {
      columns += std::string(", ") + column;
      values += ", ?";
    }
    return "INSERT INTO jobs(" + columns + ") VALUES(" + values + ")";
  }();
  Result<sqlite3_stmt*> prepared = Prepare(operation, sql);
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  statement.Text(job.id).Text(JobKindName(job.kind)).Int(job.created_ms);
  BindMutableFields(statement, job);
  int rc = statement.Step();
  if (rc == SQLITE_CONSTRAINT_UNIQUE) return InvalidError(operation + ": a job with this id already exists");
  if (rc != SQLITE_DONE) return SqlError(operation);
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

Result<Job> SqliteJobStore::Get(const std::string& id) {
  const std::string operation = "get job " + id;
  static const std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = ?";
  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared = Prepare(operation, sql);
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  int rc = statement.Text(id).Step();
  if (rc == SQLITE_DONE) return NotFoundError(operation + ": no such job");
  if (rc != SQLITE_ROW) return SqlError(operation);
  return ReadJob(statement, operation);
}

Status SqliteJobStore::Update(const Job& job) {
  const std::string operation = "update job " + job.id;
  if (!ValidProgress(job.progress)) return InvalidError(ProgressOutOfRange(operation, job.progress));
  static const std::string sql = [] {
    std::string assignments;
    for (const char* column : kMutableColumns) {
      if (!assignments.empty()) assignments += ", ";
      assignments += std::string(column) + " = ?";
    }
    return "UPDATE jobs SET " + assignments + " WHERE id = ?";
  }();
  std::lock_guard lock(mu_);
  return UpdateLocked(operation, sql, job);
}

Status SqliteJobStore::UpdateLocked(const std::string& operation, const std::string& sql, const Job& job) {
  Result<sqlite3_stmt*> prepared = Prepare(operation, sql);
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  BindMutableFields(statement, job);
  if (statement.Text(job.id).Step() != SQLITE_DONE) return SqlError(operation);
  if (sqlite3_changes64(db_) == 0) return NotFoundError(operation + ": no such job");
  return Status::Ok();
}

Status SqliteJobStore::UpdateAll(const std::vector<Job>& jobs) {
  const std::string operation = "update " + std::to_string(jobs.size()) + " jobs";
  for (const Job& job : jobs) {
    if (!ValidProgress(job.progress)) return InvalidError(ProgressOutOfRange(operation, job.progress));
  }
  std::string sql;
  for (const char* column : kMutableColumns) {
    sql += sql.empty() ? "UPDATE jobs SET " : ", ";
    sql += std::string(column) + " = ?";
  }
  sql += " WHERE id = ?";
  std::lock_guard lock(mu_);
  return InTransaction(operation, [&]() -> Status {
    for (const Job& job : jobs) {
      if (Status s = UpdateLocked("update job " + job.id, sql, job); !s.ok()) return s;
    }
    return Status::Ok();
  });
}

Status SqliteJobStore::UpdateProgress(const std::string& id, double progress) {
  const std::string operation = "update progress of job " + id;
  if (!ValidProgress(progress)) return InvalidError(ProgressOutOfRange(operation, progress));
  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared = Prepare(operation, "UPDATE jobs SET progress = ? WHERE id = ?");
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  if (statement.Real(progress).Text(id).Step() != SQLITE_DONE) return SqlError(operation);
  if (sqlite3_changes64(db_) == 0) return NotFoundError(operation + ": no such job");
  return Status::Ok();
}

Result<std::vector<Job>> SqliteJobStore::List(const JobFilter& filter) {
  const std::string operation = "list jobs";
  if (filter.limit < 0) return InvalidError(operation + ": negative limit " + std::to_string(filter.limit));

  // The SQL text depends only on which filters are present, never on their
  // values, so each shape is prepared once; values are bound.
  using Value = std::variant<int64_t, std::string>;
  std::vector<Value> values;
  std::string where;
  auto add_condition = [&](std::string_view condition) {
    where += where.empty() ? " WHERE " : " AND ";
    where += condition;
  };
  auto add_status_list = [&](const std::vector<JobStatus>& statuses) {
    std::string condition = "status IN (";
    for (size_t i = 0; i < statuses.size(); ++i) {
      condition += i == 0 ? "?" : ", ?";
      values.emplace_back(std::string(JobStatusName(statuses[i])));
    }
    add_condition(condition + ")");
  };

  if (!filter.ids.empty()) {
    add_condition("id IN (SELECT value FROM json_each(?))");
    values.emplace_back(JsonStringArray(filter.ids));
  }
  if (!filter.statuses.empty()) {
    std::vector<JobStatus> statuses = filter.statuses;
    std::sort(statuses.begin(), statuses.end());
    statuses.erase(std::unique(statuses.begin(), statuses.end()), statuses.end());
    add_status_list(statuses);
  }
  if (filter.kind) {
    add_condition("kind = ?");
    values.emplace_back(std::string(JobKindName(*filter.kind)));
  }
  if (filter.prompt) {
    add_condition("prompt = ?");
    values.emplace_back(*filter.prompt);
  }
  if (filter.filename) {
    add_condition("filename = ?");
    values.emplace_back(*filter.filename);
  }
  if (filter.search) {
    // instr, not LIKE: the text is matched as is, '%' and '_' included.
    add_condition("(instr(lower(id), lower(?)) > 0 OR instr(lower(prompt), lower(?)) > 0 OR "
                  "instr(lower(filename), lower(?)) > 0)");
    for (int i = 0; i < 3; ++i) values.emplace_back(*filter.search);
  }
  if (filter.finished_before_ms) {
    add_status_list({JobStatus::kSuccess, JobStatus::kError, JobStatus::kCanceled});
    add_condition("finished_ms < ?");
    values.emplace_back(*filter.finished_before_ms);
  }
  if (filter.after_seq) {
    add_condition(filter.newest_first ? "seq < ?" : "seq > ?");
    values.emplace_back(*filter.after_seq);
  }
  std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs" + where + " ORDER BY seq" +
                    (filter.newest_first ? " DESC" : " ASC") + " LIMIT ?";
  // A negative LIMIT is SQLite's "no limit".
  values.emplace_back(filter.limit > 0 ? filter.limit : int64_t{-1});

  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared = Prepare(operation, sql);
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  for (const Value& value : values) {
    if (const int64_t* number = std::get_if<int64_t>(&value)) {
      statement.Int(*number);
    } else {
      statement.Text(std::get<std::string>(value));
    }
  }
  std::vector<Job> jobs;
  int rc;
  while ((rc = statement.Step()) == SQLITE_ROW) {
    Result<Job> job = ReadJob(statement, operation);
    if (!job.ok()) return job.status();
    jobs.push_back(std::move(job).value());
  }
  if (rc != SQLITE_DONE) return SqlError(operation);
  return jobs;
}

Result<int64_t> SqliteJobStore::Delete(const std::vector<std::string>& ids) {
  if (ids.empty()) return int64_t{0};
  const std::string operation = "delete " + std::to_string(ids.size()) + " jobs";
  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared = Prepare(operation, "DELETE FROM jobs WHERE id = ?");
  if (!prepared.ok()) return prepared.status();
  // One transaction: all rows go, or none do (and one sync instead of one per id).
  if (Status s = Exec(operation, "BEGIN IMMEDIATE"); !s.ok()) return s;
  int64_t deleted = 0;
  {
    BoundStatement statement(*prepared);
    for (const std::string& id : ids) {
      statement.Rebind();
      if (statement.Text(id).Step() != SQLITE_DONE) {
        Status error = SqlError("delete job " + id);
        Exec(operation, "ROLLBACK");
        return error;
      }
      deleted += sqlite3_changes64(db_);
    }
  }
  if (Status s = Exec(operation, "COMMIT"); !s.ok()) {
    Exec(operation, "ROLLBACK");
    return s;
  }
  return deleted;
}

Result<std::map<JobStatus, int64_t>> SqliteJobStore::CountByStatus() {
  const std::string operation = "count jobs by status";
  std::map<JobStatus, int64_t> counts;
  for (JobStatus status :
       {JobStatus::kQueued, JobStatus::kRunning, JobStatus::kSuccess, JobStatus::kError, JobStatus::kCanceled}) {
    counts[status] = 0;
  }
  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared = Prepare(operation, "SELECT status, COUNT(*) FROM jobs GROUP BY status");
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  int rc;
  while ((rc = statement.Step()) == SQLITE_ROW) {
    std::string name = statement.ColumnText(0);
    std::optional<JobStatus> status = ParseJobStatus(name);
    if (!status) return IoError(operation + ": unknown status '" + name + "' in the jobs table");
    counts[*status] = statement.ColumnInt(1);
  }
  if (rc != SQLITE_DONE) return SqlError(operation);
  return counts;
}

Result<std::vector<double>> SqliteJobStore::RecentDurations(const std::string& lane, JobKind kind, int limit) {
  const std::string operation = "recent durations of " + std::string(JobKindName(kind)) + " jobs on lane " + lane;
  if (limit < 0) return InvalidError(operation + ": negative limit " + std::to_string(limit));
  // Rows without a start time, or finishing before they started, would poison the
  // moving average; they are skipped.
  static const std::string sql =
      "SELECT finished_ms - started_ms FROM jobs "
      "WHERE lane = ? AND kind = ? AND status = ? AND started_ms > 0 AND finished_ms >= started_ms "
      "ORDER BY finished_ms DESC, seq DESC LIMIT ?";
  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared = Prepare(operation, sql);
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  statement.Text(lane).Text(JobKindName(kind)).Text(JobStatusName(JobStatus::kSuccess)).Int(limit);
  std::vector<double> durations;
  int rc;
  while ((rc = statement.Step()) == SQLITE_ROW)
    durations.push_back(static_cast<double>(statement.ColumnInt(0)) / 1000.0);
  if (rc != SQLITE_DONE) return SqlError(operation);
  return durations;
}

Result<int64_t> SqliteJobStore::AddWebhook(const WebhookRegistration& registration) {
  const std::string operation =
      "add webhook " + registration.url + (registration.job_id.empty() ? "" : " for job " + registration.job_id);
  if (registration.url.empty()) return InvalidError(operation + ": empty url");
  std::lock_guard lock(mu_);
  FullSync durable(db_);
  Result<sqlite3_stmt*> prepared = Prepare(operation, "INSERT INTO webhooks(url, job_id, created_ms) VALUES(?, ?, ?)");
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  statement.Text(registration.url);
  if (registration.job_id.empty()) {
    statement.Null();
  } else {
    statement.Text(registration.job_id);
  }
  int rc = statement.Int(registration.created_ms).Step();
  if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) return NotFoundError(operation + ": no such job");
  if (rc != SQLITE_DONE) return SqlError(operation);
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

Result<std::vector<WebhookRegistration>> SqliteJobStore::WebhooksFor(const std::string& job_id) {
  const std::string operation = "webhooks for job " + job_id;
  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared = Prepare(
      operation,
      "SELECT id, url, COALESCE(job_id, ''), created_ms FROM webhooks WHERE job_id IS NULL OR job_id = ? ORDER BY id");
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  statement.Text(job_id);
  std::vector<WebhookRegistration> registrations;
  int rc;
  while ((rc = statement.Step()) == SQLITE_ROW) {
    WebhookRegistration registration;
    registration.id = statement.ColumnInt(0);
    registration.url = statement.ColumnText(1);
    registration.job_id = statement.ColumnText(2);
    registration.created_ms = statement.ColumnInt(3);
    registrations.push_back(std::move(registration));
  }
  if (rc != SQLITE_DONE) return SqlError(operation);
  return registrations;
}

Status SqliteJobStore::AddWebhookAttempt(const WebhookAttemptRecord& attempt) {
  const std::string operation = "record webhook attempt " + std::to_string(attempt.attempt) + " for job " + attempt.job_id;
  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared =
      Prepare(operation, "INSERT INTO webhook_attempts(delivery_id, job_id, url, event, attempt, delivered, final, "
                         "error, at_ms) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  int rc = statement.Text(attempt.delivery_id)
               .Text(attempt.job_id)
               .Text(attempt.url)
               .Text(attempt.event)
               .Int(attempt.attempt)
               .Int(attempt.delivered ? 1 : 0)
               .Int(attempt.final ? 1 : 0)
               .Text(attempt.error)
               .Int(attempt.at_ms)
               .Step();
  if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) return NotFoundError(operation + ": no such job");
  if (rc != SQLITE_DONE) return SqlError(operation);
  return Status::Ok();
}

Result<std::vector<WebhookAttemptRecord>> SqliteJobStore::WebhookAttempts(const std::string& job_id, int64_t limit) {
  const std::string operation = "webhook attempts of job " + job_id;
  if (limit <= 0) return InvalidError(operation + ": limit must be positive");
  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared =
      Prepare(operation, "SELECT delivery_id, job_id, url, event, attempt, delivered, final, error, at_ms "
                         "FROM webhook_attempts WHERE job_id = ? ORDER BY seq DESC LIMIT ?");
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  statement.Text(job_id).Int(limit);
  std::vector<WebhookAttemptRecord> attempts;
  int rc;
  while ((rc = statement.Step()) == SQLITE_ROW) {
    WebhookAttemptRecord attempt;
    attempt.delivery_id = statement.ColumnText(0);
    attempt.job_id = statement.ColumnText(1);
    attempt.url = statement.ColumnText(2);
    attempt.event = statement.ColumnText(3);
    attempt.attempt = static_cast<int>(statement.ColumnInt(4));
    attempt.delivered = statement.ColumnInt(5) != 0;
    attempt.final = statement.ColumnInt(6) != 0;
    attempt.error = statement.ColumnText(7);
    attempt.at_ms = statement.ColumnInt(8);
    attempts.push_back(std::move(attempt));
  }
  if (rc != SQLITE_DONE) return SqlError(operation);
  return attempts;
}

}  // namespace tessera::store
