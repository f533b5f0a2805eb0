// PostgresJobStore as the ClusterStore (cluster_store.h): nodes and their
// leases, claims under FOR UPDATE SKIP LOCKED, fenced writes, and sessions.
// Every time is the database's (now()), never this machine's.
#include <algorithm>
#include <cstring>
#include <iterator>

#include "store/pg_cluster_session.h"
#include "store/pg_statements.h"
#include "store/postgres_job_store.h"
#include "store/store_checks.h"
#include "store/store_rows.h"

namespace tessera::store {

using namespace rows;
using namespace checks;
using pg::PgConnection;
using pg::PgParams;
using pg::PgResult;

namespace {

// The columns a NodeRecord is read from, in the order ReadNodes expects; the
// times as epoch milliseconds of the database's clock.
constexpr const char* kNodeColumns =
    "node_id, advertise_url, lanes, incarnation, floor(extract(epoch FROM started_at) * 1000)::bigint, "
    "floor(extract(epoch FROM lease_expires_at) * 1000)::bigint, alive";

Result<std::vector<NodeRecord>> ReadNodes(const PgResult& result, std::string_view operation) {
  std::vector<NodeRecord> nodes;
  for (int row = 0; row < result.rows(); ++row) {
    NodeRecord node;
    node.node_id = result.Text(row, 0);
    node.advertise_url = result.Text(row, 1);
    auto lanes = pg::ParseTextArray(result.Text(row, 2), operation);
    if (!lanes.ok()) return lanes.status();
    node.lanes = std::move(lanes).value();
    node.incarnation = result.Int(row, 3);
    node.started_ms = result.Int(row, 4);
    node.lease_expires_ms = result.Int(row, 5);
    node.alive = result.Text(row, 6) == "t";
    nodes.push_back(std::move(node));
  }
  return nodes;
}

std::string NodeText(const std::string& node_id, int64_t incarnation) {
  return "node " + node_id + " (incarnation " + std::to_string(incarnation) + ")";
}

std::string FenceText(const Fence& fence) {
  return "fence (node '" + fence.node_id + "', attempt " + std::to_string(fence.attempt) + ")";
}

// A lease as a bound value: whole milliseconds, multiplied into an interval.
Status CheckLease(const std::string& operation, std::chrono::milliseconds lease) {
  if (lease.count() <= 0) return InvalidError(operation + ": the lease must be positive");
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<ClusterSession>> PostgresJobStore::OpenSession(const std::vector<std::string>& channels) {
  auto session = pg::PgClusterSession::Open(pool_.conninfo(), channels);
  if (!session.ok()) return session.status();
  return std::unique_ptr<ClusterSession>(std::move(session).value());
}

Result<NodeRecord> PostgresJobStore::RegisterNode(const NodeRecord& node, std::chrono::milliseconds lease) {
  const std::string operation = "register node " + node.node_id;
  if (node.node_id.empty()) return InvalidError("register node: empty node id");
  if (Status s = CheckLease(operation, lease); !s.ok()) return s;
  // One row per node id: a new incarnation replaces the previous one, which
  // thereby stops being alive (its RenewLease no longer matches).
  static const std::string sql = std::string(
                                     "INSERT INTO nodes(node_id, advertise_url, lanes, incarnation, started_at, "
                                     "lease_expires_at, alive) "
                                     "VALUES($1, $2, $3::text[], nextval('node_incarnations'), now(), "
                                     "now() + $4::bigint * interval '1 millisecond', true) "
                                     "ON CONFLICT (node_id) DO UPDATE SET advertise_url = EXCLUDED.advertise_url, "
                                     "lanes = EXCLUDED.lanes, incarnation = EXCLUDED.incarnation, "
                                     "started_at = EXCLUDED.started_at, lease_expires_at = EXCLUDED.lease_expires_at, "
                                     "alive = true RETURNING ") +
                                 kNodeColumns;
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto result =
      (*connection)
          ->Exec(operation, sql,
                 PgParams().Text(node.node_id).Text(node.advertise_url).TextArray(node.lanes).Int(lease.count()));
  if (!result.ok()) return result.status();
  auto nodes = ReadNodes(*result, operation);
  if (!nodes.ok()) return nodes.status();
  if (nodes->size() != 1) return IoError(operation + ": the database returned no row");
  return std::move(nodes->front());
}

Status PostgresJobStore::RenewLease(const std::string& node_id, int64_t incarnation, std::chrono::milliseconds lease) {
  const std::string operation = "renew the lease of " + NodeText(node_id, incarnation);
  if (Status s = CheckLease(operation, lease); !s.ok()) return s;
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto renewed = (*connection)
                     ->Exec(operation,
                            "UPDATE nodes SET lease_expires_at = now() + $3::bigint * interval '1 millisecond' "
                            "WHERE node_id = $1 AND incarnation = $2 AND alive",
                            PgParams().Text(node_id).Int(incarnation).Int(lease.count()));
  if (!renewed.ok()) return renewed.status();
  if (renewed->AffectedRows() == 0) {
    return ConflictError(operation + ": no longer alive (reaped, retired or replaced by a newer incarnation)");
  }
  return Status::Ok();
}

Status PostgresJobStore::RetireNode(const std::string& node_id, int64_t incarnation) {
  const std::string operation = "retire " + NodeText(node_id, incarnation);
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  return (*connection)
      ->Exec(operation, "UPDATE nodes SET alive = false WHERE node_id = $1 AND incarnation = $2",
             PgParams().Text(node_id).Int(incarnation))
      .status();
}

Result<std::vector<NodeRecord>> PostgresJobStore::ListNodes() {
  const std::string operation = "list nodes";
  static const std::string sql = std::string("SELECT ") + kNodeColumns + " FROM nodes ORDER BY alive DESC, node_id";
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto result = (*connection)->Exec(operation, sql);
  if (!result.ok()) return result.status();
  return ReadNodes(*result, operation);
}

Status PostgresJobStore::ExtendLeases(std::chrono::milliseconds lease) {
  const std::string operation = "extend the leases of the alive nodes";
  if (Status s = CheckLease(operation, lease); !s.ok()) return s;
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  // GREATEST: a longer lease a node renewed itself is kept.
  return (*connection)
      ->Exec(operation,
             "UPDATE nodes SET lease_expires_at = GREATEST(lease_expires_at, now() + $1::bigint * interval "
             "'1 millisecond') WHERE alive",
             PgParams().Int(lease.count()))
      .status();
}

Result<std::vector<NodeRecord>> PostgresJobStore::ReapExpiredNodes() {
  const std::string operation = "reap the nodes whose lease ran out";
  // One statement: a node renewing at the same moment either renews first (and
  // is not reaped) or finds itself no longer alive.
  static const std::string sql = std::string(
                                     "WITH reaped AS (UPDATE nodes SET alive = false "
                                     "WHERE alive AND lease_expires_at < now() RETURNING *) SELECT ") +
                                 kNodeColumns + " FROM reaped ORDER BY node_id";
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto result = (*connection)->Exec(operation, sql);
  if (!result.ok()) return result.status();
  return ReadNodes(*result, operation);
}

Result<std::vector<Job>> PostgresJobStore::RunningOn(const std::string& node_id) {
  const std::string operation = "jobs running on node " + node_id;
  static const std::string sql =
      std::string("SELECT ") + kJobColumns + " FROM jobs WHERE node = $1 AND status = $2 ORDER BY seq";
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto result = (*connection)->Exec(operation, sql, PgParams().Text(node_id).Text(JobStatusName(JobStatus::kRunning)));
  if (!result.ok()) return result.status();
  return pg::ReadJobs(*result, operation);
}

Result<std::optional<Job>> PostgresJobStore::Claim(const ClaimRequest& request,
                                                   const std::function<Status(Job&)>& start) {
  const std::string operation = "claim a job for node " + request.node_id;
  if (request.kinds.empty()) return std::optional<Job>();
  std::vector<std::string> kinds;
  for (JobKind kind : request.kinds) kinds.emplace_back(JobKindName(kind));
  // SKIP LOCKED: a row another claim holds is passed over, not waited for; a row
  // claimed and committed meanwhile no longer matches status = queued when
  // PostgreSQL rechecks it, and is passed over too.
  static const std::string sql = std::string("SELECT ") + kJobColumns +
                                 " FROM jobs WHERE status = $1 AND kind = ANY($2::text[]) "
                                 "ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED";
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  std::optional<Job> claimed;
  Status status = (*connection)->InTransaction(operation, [&]() -> Status {
    // The oldest queued job by walking the queued-jobs index in order, always:
    // the planner's statistics lag a queue that drains (taken when it held a
    // few jobs, they make it read and sort every queued row, a claim costing
    // O(queue): 3-4 ms with 10 000 queued instead of 0.1).
    if (Status s = (*connection)->ExecScript(operation, "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off");
        !s.ok()) {
      return s;
    }
    auto result =
        (*connection)->Exec(operation, sql, PgParams().Text(JobStatusName(JobStatus::kQueued)).TextArray(kinds));
    if (!result.ok()) return result.status();
    if (result->rows() == 0) return Status::Ok();
    auto queued = ReadJob(pg::PgRow(*result, 0), operation);
    if (!queued.ok()) return queued.status();
    Job job = *queued;
    if (Status s = start(job); !s.ok()) return s;
    if (job.id != queued->id) return InvalidError(operation + ": start changed the job's id " + queued->id);
    if (Status s = UpdateJob(**connection, job); !s.ok()) return s;
    claimed = std::move(job);
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return claimed;
}

Status PostgresJobStore::FenceFailure(PgConnection& connection, const std::string& operation, const std::string& id) {
  auto found = connection.Exec(operation, "SELECT status, node, attempts FROM jobs WHERE id = $1", PgParams().Text(id));
  if (!found.ok()) return found.status();
  if (found->rows() == 0) return NotFoundError(operation + ": no such job");
  return ConflictError(operation + ": the fence no longer holds: the job is " + found->Text(0, 0) + " on node '" +
                       found->Text(0, 1) + "' at attempt " + found->Text(0, 2));
}

Status PostgresJobStore::UpdateFenced(const Job& job, const Fence& fence) {
  const std::string operation = "update job " + job.id + " under " + FenceText(fence);
  if (!ValidProgress(job.progress)) return InvalidError(ProgressOutOfRange(operation, job.progress));
  // The WHERE holds the fence, the SET the job: a write may change attempts
  // (an attempt refunded) while the fence names the claim's.
  static const std::string sql = [] {
    const int id = static_cast<int>(std::size(kMutableColumns)) + 1;
    return pg::JobUpdateSql() + " AND status = $" + std::to_string(id + 1) + " AND node = $" + std::to_string(id + 2) +
           " AND attempts = $" + std::to_string(id + 3);
  }();
  PgParams params;
  BindMutableFields(params, job);
  params.Text(job.id).Text(JobStatusName(JobStatus::kRunning)).Text(fence.node_id).Int(fence.attempt);
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto updated = (*connection)->Exec(operation, sql, params);
  if (!updated.ok()) return updated.status();
  if (updated->AffectedRows() == 0) return FenceFailure(**connection, operation, job.id);
  return Status::Ok();
}

Status PostgresJobStore::UpdateQueued(const Job& job) {
  const std::string operation = "update queued job " + job.id;
  if (!ValidProgress(job.progress)) return InvalidError(ProgressOutOfRange(operation, job.progress));
  static const std::string sql = [] {
    const int id = static_cast<int>(std::size(kMutableColumns)) + 1;
    return pg::JobUpdateSql() + " AND status = $" + std::to_string(id + 1);
  }();
  PgParams params;
  BindMutableFields(params, job);
  params.Text(job.id).Text(JobStatusName(JobStatus::kQueued));
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto updated = (*connection)->Exec(operation, sql, params);
  if (!updated.ok()) return updated.status();
  if (updated->AffectedRows() > 0) return Status::Ok();
  auto found = (*connection)->Exec(operation, "SELECT status FROM jobs WHERE id = $1", PgParams().Text(job.id));
  if (!found.ok()) return found.status();
  if (found->rows() == 0) return NotFoundError(operation + ": no such job");
  return ConflictError(operation + ": it is no longer queued but " + found->Text(0, 0));
}

Status PostgresJobStore::UpdateProgressFenced(const std::string& id, const Fence& fence, double progress) {
  const std::string operation = "update progress of job " + id + " under " + FenceText(fence);
  if (!ValidProgress(progress)) return InvalidError(ProgressOutOfRange(operation, progress));
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto updated =
      (*connection)
          ->Exec(operation,
                 "UPDATE jobs SET progress = $1 WHERE id = $2 AND status = $3 AND node = $4 AND attempts = $5",
                 PgParams()
                     .Real(progress)
                     .Text(id)
                     .Text(JobStatusName(JobStatus::kRunning))
                     .Text(fence.node_id)
                     .Int(fence.attempt));
  if (!updated.ok()) return updated.status();
  if (updated->AffectedRows() == 0) return FenceFailure(**connection, operation, id);
  return Status::Ok();
}

Result<std::vector<int64_t>> PostgresJobStore::QueuedSeqs() {
  const std::string operation = "list the queued jobs' seqs";
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto rows = (*connection)->Exec(operation, "SELECT seq FROM jobs WHERE status = $1 ORDER BY seq",
                                  PgParams().Text(JobStatusName(JobStatus::kQueued)));
  if (!rows.ok()) return rows.status();
  std::vector<int64_t> seqs;
  seqs.reserve(static_cast<size_t>(rows->rows()));
  for (int row = 0; row < rows->rows(); ++row) seqs.push_back(rows->Int(row, 0));
  return seqs;
}

Result<int64_t> PostgresJobStore::QueuedBefore(int64_t seq) {
  const std::string operation = "count the queued jobs before seq " + std::to_string(seq);
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  // A range of the (status, seq) index: no row is read.
  auto counted = (*connection)
                     ->Exec(operation, "SELECT count(*) FROM jobs WHERE status = $1 AND seq < $2::bigint",
                            PgParams().Text(JobStatusName(JobStatus::kQueued)).Int(seq));
  if (!counted.ok()) return counted.status();
  return counted->Int(0, 0);
}

Result<std::vector<std::pair<int64_t, Job>>> PostgresJobStore::JobEventsAfter(int64_t after_id, int limit) {
  const std::string operation = "read the job events after " + std::to_string(after_id);
  if (limit <= 0) return InvalidError(operation + ": the limit must be positive");
  // The event's id after the job's columns, so that ReadJob reads the row as
  // it reads every other. An inner join: a deleted job's events are passed
  // over, and the limit counts only the events returned.
  static const int event_id_column =
      static_cast<int>(std::count(kJobColumns, kJobColumns + std::strlen(kJobColumns), ',')) + 1;
  static const std::string sql = std::string("SELECT ") + kJobColumns +
                                 ", events.event_id FROM (SELECT id AS event_id, job_id FROM job_events WHERE id > $1) "
                                 "events JOIN jobs ON jobs.id = events.job_id ORDER BY events.event_id LIMIT $2";
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto result = (*connection)->Exec(operation, sql, PgParams().Int(after_id).Int(limit));
  if (!result.ok()) return result.status();
  std::vector<std::pair<int64_t, Job>> events;
  events.reserve(static_cast<size_t>(result->rows()));
  for (int row = 0; row < result->rows(); ++row) {
    auto job = ReadJob(pg::PgRow(*result, row), operation);
    if (!job.ok()) return job.status();
    events.emplace_back(result->Int(row, event_id_column), std::move(job).value());
  }
  return events;
}

Result<int64_t> PostgresJobStore::LatestJobEventId() {
  const std::string operation = "read the latest job event's id";
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  auto latest = (*connection)->Exec(operation, "SELECT COALESCE(MAX(id), 0) FROM job_events");
  if (!latest.ok()) return latest.status();
  return latest->Int(0, 0);
}

Result<int64_t> PostgresJobStore::PruneJobEvents(int64_t keep_last) {
  const std::string operation = "prune the job events to the newest " + std::to_string(keep_last);
  if (keep_last < 0) return InvalidError(operation + ": cannot keep fewer than none");
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  // Below the id of the keep_last-th newest (OFFSET on the primary key's index);
  // nothing when fewer are kept.
  auto pruned = (*connection)
                    ->Exec(operation,
                           "DELETE FROM job_events WHERE id <= (SELECT id FROM job_events ORDER BY id DESC "
                           "OFFSET $1::bigint LIMIT 1)",
                           PgParams().Int(keep_last));
  if (!pruned.ok()) return pruned.status();
  return pruned->AffectedRows();
}

Status PostgresJobStore::Notify(const std::string& channel, const std::string& payload) {
  const std::string operation = "notify " + channel;
  if (channel.empty()) return InvalidError("notify: empty channel");
  auto connection = pool_.Acquire(operation);
  if (!connection.ok()) return connection.status();
  return (*connection)->Exec(operation, "SELECT pg_notify($1, $2)", PgParams().Text(channel).Text(payload)).status();
}

}  // namespace tessera::store
