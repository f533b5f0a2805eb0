#include "store/pg_migrations.h"

#include <iterator>

#include "store/store_rows.h"
#include "util/log.h"

namespace tessera::store::pg {
namespace {

// One step of the schema's history. A released step is frozen: never edit one,
// append the next.
struct Migration {
  int version;
  const char* description;
  bool incompatible;  // an older binary must not use the database once this is applied
  const char* sql;
};

constexpr Migration kMigrations[] = {
    {1, "jobs, webhooks, image batches, webhook delivery attempts", false, R"sql(
CREATE TABLE jobs (
  -- An identity never hands a number out twice, even after deletes.
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
  progress DOUBLE PRECISION NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  created_ms BIGINT NOT NULL DEFAULT 0,
  started_ms BIGINT NOT NULL DEFAULT 0,
  finished_ms BIGINT NOT NULL DEFAULT 0,
  batch_id TEXT NOT NULL DEFAULT ''
);
-- The queue and status listings, in submission order.
CREATE INDEX jobs_status_seq ON jobs(status, seq);
CREATE INDEX jobs_prompt ON jobs(prompt);
CREATE INDEX jobs_filename ON jobs(filename);
-- RecentDurations: equality on lane, kind and status, newest finish first.
CREATE INDEX jobs_lane_kind_finished ON jobs(lane, kind, status, finished_ms);
CREATE INDEX jobs_batch_id ON jobs(batch_id);

CREATE TABLE webhooks (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  url TEXT NOT NULL,
  job_id TEXT REFERENCES jobs(id) ON DELETE CASCADE,  -- NULL: every job
  created_ms BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX webhooks_job_id ON webhooks(job_id);

CREATE TABLE webhook_attempts (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  delivery_id TEXT NOT NULL,
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  url TEXT NOT NULL,
  event TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  delivered BOOLEAN NOT NULL,
  final BOOLEAN NOT NULL,
  error TEXT NOT NULL DEFAULT '',
  at_ms BIGINT NOT NULL
);
-- WebhookAttempts: one job's, newest first.
CREATE INDEX webhook_attempts_job ON webhook_attempts(job_id, seq);

CREATE TABLE batches (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- creation order
  id TEXT NOT NULL UNIQUE,
  game_id TEXT NOT NULL DEFAULT '',
  total_images BIGINT NOT NULL DEFAULT 0,
  max_retries INTEGER NOT NULL DEFAULT 0,
  params_json TEXT NOT NULL DEFAULT '{}',
  webhook_url TEXT NOT NULL DEFAULT '',
  created_ms BIGINT NOT NULL DEFAULT 0,
  notified_ms BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX batches_game_seq ON batches(game_id, seq);
-- UnnotifiedBatchIds: only the batches not notified yet, which are few.
CREATE INDEX batches_unnotified ON batches(seq) WHERE notified_ms = 0;

CREATE TABLE batch_images (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- creation order
  id TEXT NOT NULL UNIQUE,
  batch_id TEXT NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
  position BIGINT NOT NULL,
  original_name TEXT NOT NULL DEFAULT '',
  input_path TEXT NOT NULL DEFAULT '',
  -- No foreign key: retention may delete a finished job its image still names.
  job_id TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 1,
  retry_at_ms BIGINT NOT NULL DEFAULT 0,  -- 0: no retry scheduled
  UNIQUE (batch_id, position)             -- upload order within a batch; one image per position
);
-- ImageForJob, and UnsettledBatchIds from the queued and running jobs.
CREATE INDEX batch_images_job_id ON batch_images(job_id);
-- ImagesDueForRetry and NextImageRetryMs: only the images with a retry due.
CREATE INDEX batch_images_retry_at ON batch_images(retry_at_ms, seq) WHERE retry_at_ms > 0;
)sql"},
    {2, "cluster: the node a job runs on, nodes with leases, queued-job notifications", false, R"sql(
ALTER TABLE jobs ADD COLUMN node TEXT NOT NULL DEFAULT '';
-- RunningOn: the jobs a node runs.
CREATE INDEX jobs_node_status ON jobs(node, status);

-- A new, larger number at every registration: a fence for the node itself.
CREATE SEQUENCE node_incarnations;
-- One row per node id: its latest incarnation. Times are the database's clock.
CREATE TABLE nodes (
  node_id TEXT PRIMARY KEY,
  advertise_url TEXT NOT NULL DEFAULT '',
  lanes TEXT[] NOT NULL DEFAULT '{}',
  incarnation BIGINT NOT NULL,
  started_at TIMESTAMPTZ NOT NULL,
  lease_expires_at TIMESTAMPTZ NOT NULL,
  alive BOOLEAN NOT NULL DEFAULT true
);

-- A job became queued (inserted, requeued, retried): wake the nodes LISTENing
-- on tessera_jobs. Sent by the database so that no writer can forget it;
-- identical notifications of one transaction are delivered once.
CREATE FUNCTION tessera_notify_job_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('tessera_jobs', 'queued');
  RETURN NULL;
END
$$;
CREATE TRIGGER jobs_queued_on_insert AFTER INSERT ON jobs
  FOR EACH ROW WHEN (NEW.status = 'queued') EXECUTE FUNCTION tessera_notify_job_queued();
-- Only a change to queued: every Update writes the status column, and a queued
-- job written again (still queued) has nothing new to claim.
CREATE TRIGGER jobs_queued_on_update AFTER UPDATE OF status ON jobs
  FOR EACH ROW WHEN (NEW.status = 'queued' AND OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION tessera_notify_job_queued();
)sql"},
    {3, "cluster: the feed of job changes (job_events), numbered in commit order", false, R"sql(
-- One row per write of a job (insert or update of any column): what every node
-- follows to publish GET /events with the cluster's ids. The job is read from
-- jobs when an event is published; a deleted job's events are skipped.
CREATE TABLE job_events (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id TEXT NOT NULL,
  at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Deferred to the commit, under a transaction-level advisory lock ("tessera" in
-- ASCII then 2, beside the schema's 0 and the reaper's 1): events are numbered
-- in commit order, so a follower reading "id > the last it saw" never passes
-- over a smaller id that commits later. The lock is the last one a writing
-- transaction takes (all its row locks are held by then), so it cannot take
-- part in a deadlock; its cost is that job writes commit one at a time.
-- Identical notifications of one transaction are delivered once.
CREATE FUNCTION tessera_record_job_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(8387236820507844866);
  INSERT INTO job_events(job_id) VALUES (NEW.id);
  PERFORM pg_notify('tessera_events', '');
  RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER jobs_event AFTER INSERT OR UPDATE ON jobs
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tessera_record_job_event();
)sql"},
    {4, "cluster: an index of the queued jobs alone, in seq order", false, R"sql(
-- What a claim, a queue position and the queue snapshot read: the queued jobs
-- in seq order. Without it the planner (its statistics taken while every job
-- was queued) may walk the primary key and filter out every job already
-- claimed, a claim's cost growing with the jobs done.
CREATE INDEX jobs_queued_by_seq ON jobs (seq) WHERE status = 'queued';
)sql"},
};

// The advisory lock every server takes to migrate: one key for tessera's schema
// ("tessera" in ASCII, so it is recognisable in pg_locks).
constexpr int64_t kMigrationLock = 0x7465737365726100;

}  // namespace

int LatestSchemaVersion() { return std::end(kMigrations)[-1].version; }

Result<int> Migrate(PgConnection& connection, const std::string& where) {
  const std::string lock_operation = "lock the schema of " + where;
  if (auto locked = connection.Exec(lock_operation, "SELECT pg_advisory_lock($1)", PgParams().Int(kMigrationLock));
      !locked.ok()) {
    return locked.status();
  }
  // Session-level: released here on every return (and by the server if this
  // connection dies first).
  struct Unlock {
    PgConnection& connection;
    ~Unlock() { connection.Exec("unlock the schema", "SELECT pg_advisory_unlock($1)", PgParams().Int(kMigrationLock)); }
  } unlock{connection};

  if (Status s = connection.ExecScript("create schema_migrations of " + where,
                                       "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                       "version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
                                       "incompatible BOOLEAN NOT NULL DEFAULT false, applied_ms BIGINT NOT NULL)");
      !s.ok()) {
    return s;
  }
  auto current = connection.Exec("read the schema version of " + where,
                                 "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!current.ok()) return current.status();
  const int64_t version = current->Int(0, 0);

  if (version > LatestSchemaVersion()) {
    auto breaking = connection.Exec(
        "read the schema steps of " + where,
        "SELECT version, description FROM schema_migrations WHERE version > $1 AND incompatible ORDER BY version",
        PgParams().Int(LatestSchemaVersion()));
    if (!breaking.ok()) return breaking.status();
    if (breaking->rows() > 0) {
      return Status(StatusCode::kUnsupported,
                    where + ": schema version " + breaking->Text(0, 0) + " (" + breaking->Text(0, 1) +
                        ") is incompatible with this tessera, which knows up to version " +
                        std::to_string(LatestSchemaVersion()) + ": upgrade this server to the version the others run");
    }
    LogWarn("job_store_schema_newer")
        .Field("store", where)
        .Field("schema_version", version)
        .Field("known_version", LatestSchemaVersion())
        .Field("note", "additive steps only: this server carries on");
    return 0;
  }

  int applied = 0;
  for (const Migration& migration : kMigrations) {
    if (migration.version <= version) continue;
    const std::string operation = "migrate " + where + " to schema version " + std::to_string(migration.version);
    Status status = connection.InTransaction(operation, [&]() -> Status {
      if (Status s = connection.ExecScript(operation, migration.sql); !s.ok()) return s;
      auto recorded = connection.Exec(
          operation, "INSERT INTO schema_migrations(version, description, incompatible, applied_ms) VALUES($1, $2, $3, $4)",
          PgParams().Int(migration.version).Text(migration.description).Bool(migration.incompatible).Int(rows::NowMs()));
      return recorded.status();
    });
    if (!status.ok()) return status;
    ++applied;
    LogInfo("job_store_migrated")
        .Field("store", where)
        .Field("version", migration.version)
        .Field("description", migration.description);
  }
  return applied;
}

}  // namespace tessera::store::pg
