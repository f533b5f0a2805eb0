#include "store/sqlite_job_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <variant>

#include "util/failpoint.h"
#include "util/log.h"

namespace tessera::store {
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
};

// The columns a Job is read from, in the order ReadJob expects.
constexpr const char* kJobColumns =
    "seq, id, kind, status, created_ms, prompt, params_json, input_path, filename, webhook_url, client, "
    "lane, gpu_id, attempts, progress, error, started_ms, finished_ms, batch_id";

// The columns Update writes (everything but id, kind, seq and created_ms), in the
// order BindMutableFields binds them.
constexpr const char* kMutableColumns[] = {"status",      "prompt", "params_json", "input_path",  "filename",
                                           "webhook_url", "client", "lane",        "gpu_id",      "attempts",
                                           "progress",    "error",  "started_ms",  "finished_ms", "batch_id"};

// The columns a BatchImageRow is read from (image `i` left-joined with its job
// `j`), in the order ReadImageRow expects.
constexpr const char* kImageRowColumns =
    "i.id, i.batch_id, i.position, i.original_name, i.input_path, i.job_id, i.attempts, i.retry_at_ms, "
    "j.status, j.error, j.filename, j.started_ms, j.finished_ms";
constexpr const char* kImageRowsFrom = " FROM batch_images i LEFT JOIN jobs j ON j.id = i.job_id";

// The columns a Batch is read from, in the order ReadBatch expects.
constexpr const char* kBatchColumns =
    "id, game_id, total_images, max_retries, params_json, webhook_url, created_ms, notified_ms";

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

bool ValidProgress(double progress) { return std::isfinite(progress) && progress >= 0.0 && progress <= 1.0; }

std::string ProgressOutOfRange(const std::string& operation, double progress) {
  char text[64];
  std::snprintf(text, sizeof text, "%g", progress);
  return operation + ": progress " + text + " is outside [0, 1]";
}

// A JSON array of strings, the one bound value behind `IN (SELECT value FROM
// json_each(?))`, so a list of any length is one cached statement.
std::string JsonStringArray(const std::vector<std::string>& items) {
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

// Binds the kMutableColumns of `job`, in their order.
void BindMutableFields(BoundStatement& statement, const Job& job) {
  statement.Text(JobStatusName(job.status))
      .Text(job.prompt)
      .Text(job.params_json)
      .Text(job.input_path)
      .Text(job.filename)
      .Text(job.webhook_url)
      .Text(job.client)
      .Text(job.lane)
      .Int(job.gpu_id)
      .Int(job.attempts)
      .Real(job.progress)
      .Text(job.error)
      .Int(job.started_ms)
      .Int(job.finished_ms)
      .Text(job.batch_id);
}

// Reads one row selected with kJobColumns.
Result<Job> ReadJob(const BoundStatement& row, std::string_view operation) {
  Job job;
  job.seq = row.ColumnInt(0);
  job.id = row.ColumnText(1);
  std::string kind = row.ColumnText(2);
  std::string status = row.ColumnText(3);
  std::optional<JobKind> parsed_kind = ParseJobKind(kind);
  std::optional<JobStatus> parsed_status = ParseJobStatus(status);
  if (!parsed_kind) return IoError(std::string(operation) + ": job " + job.id + " has unknown kind '" + kind + "'");
  if (!parsed_status) {
    return IoError(std::string(operation) + ": job " + job.id + " has unknown status '" + status + "'");
  }
  job.kind = *parsed_kind;
  job.status = *parsed_status;
  job.created_ms = row.ColumnInt(4);
  job.prompt = row.ColumnText(5);
  job.params_json = row.ColumnText(6);
  job.input_path = row.ColumnText(7);
  job.filename = row.ColumnText(8);
  job.webhook_url = row.ColumnText(9);
  job.client = row.ColumnText(10);
  job.lane = row.ColumnText(11);
  job.gpu_id = static_cast<int>(row.ColumnInt(12));
  job.attempts = static_cast<int>(row.ColumnInt(13));
  job.progress = row.ColumnReal(14);
  job.error = row.ColumnText(15);
  job.started_ms = row.ColumnInt(16);
  job.finished_ms = row.ColumnInt(17);
  job.batch_id = row.ColumnText(18);
  return job;
}

// Reads one row selected with kImageRowColumns and kImageRowsFrom.
Result<BatchImageRow> ReadImageRow(const BoundStatement& row, std::string_view operation) {
  BatchImageRow result;
  BatchImage& image = result.image;
  image.id = row.ColumnText(0);
  image.batch_id = row.ColumnText(1);
  image.position = row.ColumnInt(2);
  image.original_name = row.ColumnText(3);
  image.input_path = row.ColumnText(4);
  image.job_id = row.ColumnText(5);
  image.attempts = static_cast<int>(row.ColumnInt(6));
  image.retry_at_ms = row.ColumnInt(7);
  if (row.ColumnIsNull(8)) {
    // The job row is gone (retention deleted it); what it said is lost, and an
    // image must not read as still waiting for it.
    result.job_status = JobStatus::kError;
    result.job_error = "job " + image.job_id + " was deleted";
    return result;
  }
  std::string status = row.ColumnText(8);
  std::optional<JobStatus> parsed_status = ParseJobStatus(status);
  if (!parsed_status) {
    return IoError(std::string(operation) + ": job " + image.job_id + " has unknown status '" + status + "'");
  }
  result.job_status = *parsed_status;
  result.job_error = row.ColumnText(9);
  result.result_filename = row.ColumnText(10);
  result.job_started_ms = row.ColumnInt(11);
  result.job_finished_ms = row.ColumnInt(12);
  return result;
}

Batch ReadBatch(const BoundStatement& row) {
  Batch batch;
  batch.id = row.ColumnText(0);
  batch.game_id = row.ColumnText(1);
  batch.total_images = row.ColumnInt(2);
  batch.max_retries = static_cast<int>(row.ColumnInt(3));
  batch.params_json = row.ColumnText(4);
  batch.webhook_url = row.ColumnText(5);
  batch.created_ms = row.ColumnInt(6);
  batch.notified_ms = row.ColumnInt(7);
  return batch;
}

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

namespace {

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

}  // namespace

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
  if (filter.finished_before_ms) {
    add_status_list({JobStatus::kSuccess, JobStatus::kError, JobStatus::kCanceled});
    add_condition("finished_ms < ?");
    values.emplace_back(*filter.finished_before_ms);
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

// --- Batches -------------------------------------------------------------------

Result<std::vector<int64_t>> SqliteJobStore::CreateBatch(const Batch& batch, const std::vector<BatchImage>& images,
                                                         const std::vector<Job>& jobs) {
  if (batch.id.empty()) return InvalidError("create batch: empty id");
  const std::string operation = "create batch " + batch.id;
  if (images.size() != jobs.size()) {
    return InvalidError(operation + ": " + std::to_string(images.size()) + " images but " +
                        std::to_string(jobs.size()) + " jobs");
  }
  if (batch.total_images != static_cast<int64_t>(images.size())) {
    return InvalidError(operation + ": total_images is " + std::to_string(batch.total_images) + " but " +
                        std::to_string(images.size()) + " images were given");
  }
  for (size_t i = 0; i < images.size(); ++i) {
    const BatchImage& image = images[i];
    if (image.id.empty()) return InvalidError(operation + ": image " + std::to_string(i) + " has an empty id");
    if (image.batch_id != batch.id) {
      return InvalidError(operation + ": image " + image.id + " names batch '" + image.batch_id + "'");
    }
    if (image.job_id != jobs[i].id) {
      return InvalidError(operation + ": image " + image.id + " names job '" + image.job_id + "' but its job is '" +
                          jobs[i].id + "'");
    }
    if (jobs[i].batch_id != batch.id) {
      return InvalidError(operation + ": job " + jobs[i].id + " names batch '" + jobs[i].batch_id + "'");
    }
  }

  std::vector<int64_t> seqs;
  std::lock_guard lock(mu_);
  FullSync durable(db_);
  Status status = InTransaction(operation, [&]() -> Status {
    Result<sqlite3_stmt*> insert_batch =
        Prepare(operation, std::string("INSERT INTO batches(") + kBatchColumns + ") VALUES(?, ?, ?, ?, ?, ?, ?, ?)");
    if (!insert_batch.ok()) return insert_batch.status();
    {
      BoundStatement statement(*insert_batch);
      int rc = statement.Text(batch.id)
                   .Text(batch.game_id)
                   .Int(batch.total_images)
                   .Int(batch.max_retries)
                   .Text(batch.params_json)
                   .Text(batch.webhook_url)
                   .Int(batch.created_ms)
                   .Int(batch.notified_ms)
                   .Step();
      if (rc == SQLITE_CONSTRAINT_UNIQUE) return InvalidError(operation + ": a batch with this id already exists");
      if (rc != SQLITE_DONE) return SqlError(operation);
    }

    Result<sqlite3_stmt*> insert_image =
        Prepare(operation,
                "INSERT INTO batch_images(id, batch_id, position, original_name, input_path, job_id, attempts, "
                "retry_at_ms) VALUES(?, ?, ?, ?, ?, ?, ?, ?)");
    if (!insert_image.ok()) return insert_image.status();
    for (const BatchImage& image : images) {
      BoundStatement statement(*insert_image);
      int rc = statement.Text(image.id)
                   .Text(batch.id)
                   .Int(image.position)
                   .Text(image.original_name)
                   .Text(image.input_path)
                   .Text(image.job_id)
                   .Int(image.attempts)
                   .Int(image.retry_at_ms)
                   .Step();
      // The message names the constraint: a duplicate id or a taken position.
      if (rc == SQLITE_CONSTRAINT_UNIQUE) return SqlError(operation + ": image " + image.id, StatusCode::kInvalid);
      if (rc != SQLITE_DONE) return SqlError(operation + ": image " + image.id);
    }

    for (const Job& job : jobs) {
      Result<int64_t> seq = InsertJob(job);
      if (!seq.ok()) return Status(seq.status().code(), operation + ": " + seq.status().message());
      seqs.push_back(*seq);
    }

    if (FailpointHit("store.create_batch")) {
      return IoError(operation + ": injected failure (failpoint store.create_batch)");
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return seqs;
}

Result<Batch> SqliteJobStore::GetBatch(const std::string& id) {
  const std::string operation = "get batch " + id;
  static const std::string sql = std::string("SELECT ") + kBatchColumns + " FROM batches WHERE id = ?";
  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared = Prepare(operation, sql);
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  int rc = statement.Text(id).Step();
  if (rc == SQLITE_DONE) return NotFoundError(operation + ": no such batch");
  if (rc != SQLITE_ROW) return SqlError(operation);
  return ReadBatch(statement);
}

Result<std::vector<BatchImageRow>> SqliteJobStore::ListBatchImages(const std::string& batch_id) {
  const std::string operation = "list images of batch " + batch_id;
  static const std::string sql =
      std::string("SELECT ") + kImageRowColumns + kImageRowsFrom + " WHERE i.batch_id = ? ORDER BY i.position";
  std::lock_guard lock(mu_);
  std::vector<BatchImageRow> rows;
  {
    Result<sqlite3_stmt*> prepared = Prepare(operation, sql);
    if (!prepared.ok()) return prepared.status();
    BoundStatement statement(*prepared);
    statement.Text(batch_id);
    int rc;
    while ((rc = statement.Step()) == SQLITE_ROW) {
      Result<BatchImageRow> row = ReadImageRow(statement, operation);
      if (!row.ok()) return row.status();
      rows.push_back(std::move(row).value());
    }
    if (rc != SQLITE_DONE) return SqlError(operation);
  }
  if (rows.empty()) {
    // No images: an empty batch, or no batch at all.
    Result<sqlite3_stmt*> prepared = Prepare(operation, "SELECT 1 FROM batches WHERE id = ?");
    if (!prepared.ok()) return prepared.status();
    BoundStatement statement(*prepared);
    int rc = statement.Text(batch_id).Step();
    if (rc == SQLITE_DONE) return NotFoundError(operation + ": no such batch");
    if (rc != SQLITE_ROW) return SqlError(operation);
  }
  return rows;
}

Result<std::vector<int64_t>> SqliteJobStore::RetryImages(const std::vector<ImageRetry>& retries) {
  std::vector<int64_t> seqs;
  if (retries.empty()) return seqs;
  const std::string operation = "retry " + std::to_string(retries.size()) + " images";
  std::lock_guard lock(mu_);
  FullSync durable(db_);
  Status status = InTransaction(operation, [&]() -> Status {
    Result<sqlite3_stmt*> select = Prepare(operation, "SELECT batch_id FROM batch_images WHERE id = ?");
    if (!select.ok()) return select.status();
    Result<sqlite3_stmt*> update =
        Prepare(operation, "UPDATE batch_images SET job_id = ?, attempts = attempts + 1, retry_at_ms = 0 WHERE id = ?");
    if (!update.ok()) return update.status();
    for (const ImageRetry& retry : retries) {
      const std::string image_operation = operation + ": image " + retry.image_id;
      std::string batch_id;
      {
        BoundStatement statement(*select);
        int rc = statement.Text(retry.image_id).Step();
        if (rc == SQLITE_DONE) return InvalidError(image_operation + ": no such image");
        if (rc != SQLITE_ROW) return SqlError(image_operation);
        batch_id = statement.ColumnText(0);
      }
      if (retry.job.batch_id != batch_id) {
        return InvalidError(image_operation + " is in batch " + batch_id + " but its new job " + retry.job.id +
                            " names batch '" + retry.job.batch_id + "'");
      }
      Result<int64_t> seq = InsertJob(retry.job);
      if (!seq.ok()) return Status(seq.status().code(), image_operation + ": " + seq.status().message());
      seqs.push_back(*seq);
      BoundStatement statement(*update);
      if (statement.Text(retry.job.id).Text(retry.image_id).Step() != SQLITE_DONE) return SqlError(image_operation);
    }
    if (FailpointHit("store.retry_images")) {
      return IoError(operation + ": injected failure (failpoint store.retry_images)");
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return seqs;
}

Status SqliteJobStore::ScheduleImageRetry(const std::string& image_id, int64_t retry_at_ms) {
  const std::string operation = "schedule a retry of image " + image_id;
  if (retry_at_ms < 0) return InvalidError(operation + ": negative time " + std::to_string(retry_at_ms));
  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared = Prepare(operation, "UPDATE batch_images SET retry_at_ms = ? WHERE id = ?");
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  if (statement.Int(retry_at_ms).Text(image_id).Step() != SQLITE_DONE) return SqlError(operation);
  if (sqlite3_changes64(db_) == 0) return NotFoundError(operation + ": no such image");
  return Status::Ok();
}

Result<std::vector<BatchImageRow>> SqliteJobStore::ImagesDueForRetry(int64_t now_ms) {
  const std::string operation = "images due for retry";
  static const std::string sql = std::string("SELECT ") + kImageRowColumns + kImageRowsFrom +
                                 " WHERE i.retry_at_ms > 0 AND i.retry_at_ms <= ? ORDER BY i.retry_at_ms, i.seq";
  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared = Prepare(operation, sql);
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  statement.Int(now_ms);
  std::vector<BatchImageRow> rows;
  int rc;
  while ((rc = statement.Step()) == SQLITE_ROW) {
    Result<BatchImageRow> row = ReadImageRow(statement, operation);
    if (!row.ok()) return row.status();
    rows.push_back(std::move(row).value());
  }
  if (rc != SQLITE_DONE) return SqlError(operation);
  return rows;
}

Result<int64_t> SqliteJobStore::NextImageRetryMs() {
  const std::string operation = "next image retry time";
  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared =
      Prepare(operation, "SELECT COALESCE(MIN(retry_at_ms), 0) FROM batch_images WHERE retry_at_ms > 0");
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  if (statement.Step() != SQLITE_ROW) return SqlError(operation);
  return statement.ColumnInt(0);
}

Result<BatchImageRow> SqliteJobStore::ImageForJob(const std::string& job_id) {
  const std::string operation = "image of job " + job_id;
  static const std::string sql =
      std::string("SELECT ") + kImageRowColumns + kImageRowsFrom + " WHERE i.job_id = ? ORDER BY i.seq LIMIT 1";
  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared = Prepare(operation, sql);
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  int rc = statement.Text(job_id).Step();
  if (rc == SQLITE_DONE) return NotFoundError(operation + ": the job is no image's current job");
  if (rc != SQLITE_ROW) return SqlError(operation);
  return ReadImageRow(statement, operation);
}

Result<bool> SqliteJobStore::MarkBatchNotified(const std::string& batch_id, int64_t now_ms) {
  const std::string operation = "mark batch " + batch_id + " notified";
  // 0 means "not yet": a time that reads as 0 would let the batch notify again.
  if (now_ms <= 0) return InvalidError(operation + ": time " + std::to_string(now_ms) + " is not after the epoch");
  std::lock_guard lock(mu_);
  {
    Result<sqlite3_stmt*> prepared =
        Prepare(operation, "UPDATE batches SET notified_ms = ? WHERE id = ? AND notified_ms = 0");
    if (!prepared.ok()) return prepared.status();
    BoundStatement statement(*prepared);
    if (statement.Int(now_ms).Text(batch_id).Step() != SQLITE_DONE) return SqlError(operation);
    if (sqlite3_changes64(db_) == 1) return true;
  }
  Result<sqlite3_stmt*> prepared = Prepare(operation, "SELECT 1 FROM batches WHERE id = ?");
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  int rc = statement.Text(batch_id).Step();
  if (rc == SQLITE_DONE) return NotFoundError(operation + ": no such batch");
  if (rc != SQLITE_ROW) return SqlError(operation);
  return false;
}

Result<std::vector<std::string>> SqliteJobStore::UnsettledBatchIds() {
  const std::string operation = "unsettled batches";
  // From the unfinished jobs (few, by the status index) and the scheduled retries
  // (by the retry index), not from a scan of every image ever uploaded.
  static const std::string sql =
      "SELECT id FROM batches WHERE id IN ("
      "SELECT i.batch_id FROM jobs j JOIN batch_images i ON i.job_id = j.id WHERE j.status IN (?, ?) "
      "UNION SELECT batch_id FROM batch_images WHERE retry_at_ms > 0) ORDER BY seq";
  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared = Prepare(operation, sql);
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  statement.Text(JobStatusName(JobStatus::kQueued)).Text(JobStatusName(JobStatus::kRunning));
  std::vector<std::string> ids;
  int rc;
  while ((rc = statement.Step()) == SQLITE_ROW) ids.push_back(statement.ColumnText(0));
  if (rc != SQLITE_DONE) return SqlError(operation);
  return ids;
}

Result<std::vector<std::string>> SqliteJobStore::UnnotifiedBatchIds() {
  const std::string operation = "unnotified batches";
  std::lock_guard lock(mu_);
  Result<sqlite3_stmt*> prepared = Prepare(operation, "SELECT id FROM batches WHERE notified_ms = 0 ORDER BY seq");
  if (!prepared.ok()) return prepared.status();
  BoundStatement statement(*prepared);
  std::vector<std::string> ids;
  int rc;
  while ((rc = statement.Step()) == SQLITE_ROW) ids.push_back(statement.ColumnText(0));
  if (rc != SQLITE_DONE) return SqlError(operation);
  return ids;
}

}  // namespace tessera::store
