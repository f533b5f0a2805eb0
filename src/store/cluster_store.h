// What makes several `tessera serve` processes on one database one service
// (issue 18, docs/cluster.md): nodes that hold a lease, jobs claimed by lanes
// under a fence, and wake-ups between nodes. Only the PostgreSQL store has it;
// a server on SQLite is a cluster of one and never asks for it.
//
// Clocks: leases are kept by the database's clock (now() in SQL), never by the
// nodes' own, so nodes whose clocks disagree still agree on who is late.
//
// The store still decides no state transition: Claim hands the locked row to
// the caller's `start` (src/jobs/job_state.h moves it to running) and writes
// what comes back in the same transaction.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/job.h"
#include "util/status.h"

namespace tessera::store {

// A server as the others see it: one row of the `nodes` table.
struct NodeRecord {
  std::string node_id;              // --node-id (default: the host name)
  std::string advertise_url;        // how other nodes and clients reach it
  std::vector<std::string> lanes;   // its lanes' cluster names, "gpu-a/cuda:0"
  int64_t incarnation = 0;          // assigned by RegisterNode: a new one at every start
  int64_t started_ms = 0;           // when this incarnation registered (database clock)
  int64_t lease_expires_ms = 0;     // database clock
  bool alive = true;                // false once reaped (or replaced by a newer incarnation)
};

// The lanes of the alive nodes among `nodes`: what the cluster's queue runs on.
inline int AliveLanes(const std::vector<NodeRecord>& nodes) {
  int lanes = 0;
  for (const NodeRecord& node : nodes) lanes += node.alive ? static_cast<int>(node.lanes.size()) : 0;
  return lanes;
}

// Who holds a claimed job. Every write of a claimed job names it and matches
// only while the row is still running on that node at that attempt: a job taken
// back from a node presumed dead has been requeued (and claimed again with a new
// attempt), so the late writes of the first node match nothing.
struct Fence {
  std::string node_id;
  int attempt = 0;  // Job::attempts as the claim left it
};

// Notification channels (LISTEN/NOTIFY).
// tessera_jobs: a job became queued (inserted, requeued, retried); payload
// "queued". Sent by the database itself (a trigger), so no writer can forget it.
inline constexpr const char* kJobsChannel = "tessera_jobs";
// tessera_control: messages between nodes; payload "cancel <job id>".
inline constexpr const char* kControlChannel = "tessera_control";
// tessera_events: a job was written (inserted or updated, any column) and its
// event is in job_events; empty payload. Sent by the database (a trigger, at
// commit).
inline constexpr const char* kEventsChannel = "tessera_events";

struct Notification {
  std::string channel;
  std::string payload;
};

// One dedicated connection of a server: what it LISTENs to, and the reaper's
// advisory lock, both of which last exactly as long as the connection. Not
// thread-safe: one thread (the server's cluster loop) uses it.
class ClusterSession {
 public:
  virtual ~ClusterSession() = default;
  // Waits up to `timeout` for notifications on the session's channels; empty
  // when none came. When the connection was lost it reconnects (and LISTENs
  // again) first; kUnavailable when it cannot, and the reaper lock is then no longer held.
  virtual Result<std::vector<Notification>> Wait(std::chrono::milliseconds timeout) = 0;
  // Takes the reaper's advisory lock when no other session holds it; true while
  // this session holds it (held until its connection ends).
  virtual Result<bool> HoldReaperLock() = 0;
  // Gives the lock back (after one reaping pass): a node frozen while holding
  // it (a stalled VM keeps its connection open) must not keep every other node
  // from reaping — it would be the one to reap.
  virtual Status ReleaseReaperLock() = 0;
  // Times the connection was (re)opened; a change means what it held was lost
  // and notifications may have been missed.
  virtual int64_t connections() const = 0;
};

// What a lane asks Claim for.
struct ClaimRequest {
  std::string node_id;
  std::vector<JobKind> kinds;  // what the lane can run
};

class ClusterStore {
 public:
  virtual ~ClusterStore() = default;

  // A session of its own LISTENing on `channels`.
  virtual Result<std::unique_ptr<ClusterSession>> OpenSession(const std::vector<std::string>& channels) = 0;

  // Registers `node` (node_id, advertise_url, lanes) as a new incarnation with a
  // lease of `lease` from now; a previous incarnation of the same node id stops
  // being alive. Returns the row as written.
  virtual Result<NodeRecord> RegisterNode(const NodeRecord& node, std::chrono::milliseconds lease) = 0;
  // Renews this incarnation's lease to now + `lease`. kConflict when it is no
  // longer alive (reaped, or replaced): the node must stop what it runs.
  virtual Status RenewLease(const std::string& node_id, int64_t incarnation, std::chrono::milliseconds lease) = 0;
  // Marks this incarnation not alive (a clean stop).
  virtual Status RetireNode(const std::string& node_id, int64_t incarnation) = 0;
  // Every node ever registered (latest incarnation of each), alive first.
  virtual Result<std::vector<NodeRecord>> ListNodes() = 0;
  // Moves every alive node's lease to at least now + `lease`. The reaper calls
  // it when it takes its lock: a lease that ran out while no reaper was
  // connected (a database outage) is not taken for a death.
  virtual Status ExtendLeases(std::chrono::milliseconds lease) = 0;
  // Alive nodes whose lease ran out: marked not alive and returned.
  virtual Result<std::vector<NodeRecord>> ReapExpiredNodes() = 0;
  // The jobs running on `node_id` (any incarnation), in seq order.
  virtual Result<std::vector<Job>> RunningOn(const std::string& node_id) = 0;

  // Takes the oldest queued job (seq order) of one of `request.kinds` that no
  // other transaction holds (FOR UPDATE SKIP LOCKED), hands it to `start` (which
  // makes it running and sets lane, gpu_id, node, attempts), and writes what
  // `start` left, all in one transaction. nullopt when no job is queued; `start`
  // failing rolls back and returns its status. Two claims never get one job.
  virtual Result<std::optional<Job>> Claim(const ClaimRequest& request,
                                           const std::function<Status(Job&)>& start) = 0;
  // JobStore::Update and UpdateProgress of a claimed job, written only while
  // `fence` still holds it (running, on fence.node_id, at fence.attempt).
  // kConflict when it no longer does (the job was taken back or canceled);
  // kNotFound when the job is gone.
  virtual Status UpdateFenced(const Job& job, const Fence& fence) = 0;
  virtual Status UpdateProgressFenced(const std::string& id, const Fence& fence, double progress) = 0;
  // JobStore::Update of a job only while its row is still queued (a cancel that
  // must not overwrite a claim made meanwhile). kConflict when it is not.
  virtual Status UpdateQueued(const Job& job) = 0;
  // Queued jobs before `seq` across the cluster (a queue position is this + 1),
  // without reading the queue: an index range count.
  virtual Result<int64_t> QueuedBefore(int64_t seq) = 0;
  // The seqs of every queued job, ascending: what a node ranks queued jobs
  // against (a snapshot taken at most twice a second, so that GET /status does
  // not count the queue on every request).
  virtual Result<std::vector<int64_t>> QueuedSeqs() = 0;
  // The feed of job changes (every insert or update of a job, numbered by the
  // database in commit order): the events after `after_id`, at most `limit`, in
  // id order, each with its job as the row is now (so several events of one job
  // may carry the same, latest row). Events of a deleted job are skipped.
  virtual Result<std::vector<std::pair<int64_t, Job>>> JobEventsAfter(int64_t after_id, int limit) = 0;
  // The newest event's id (0 when there is none): where a new follower starts.
  virtual Result<int64_t> LatestJobEventId() = 0;
  // Deletes every event but the newest `keep_last`; returns how many went.
  virtual Result<int64_t> PruneJobEvents(int64_t keep_last) = 0;
  // NOTIFY `channel`, `payload` (delivered to every session listening, this
  // server's included).
  virtual Status Notify(const std::string& channel, const std::string& payload) = 0;
};

}  // namespace tessera::store
