// The shared store: one PostgreSQL database that several `tessera serve`
// processes may name (docs/store.md). It is the batch store too, for the same
// reason as SQLite: a batch, its images and their jobs commit in one transaction.
//
// Behaviour is the same as SqliteJobStore's, checked by the same conformance
// suite (tests/store/store_conformance_test.cpp), including what it refuses
// beyond the interfaces' contracts (empty ids, progress outside [0, 1],
// negative limits...). Differences:
// - Durability: every call that returns ok has committed, and PostgreSQL's
//   commit is durable (synchronous_commit as the database sets it).
// - Thread safety: calls borrow a connection from a small pool (PgPool) for their
//   length, so they run in parallel; each is one statement or one transaction.
// - Schema: PostgreSQL's own numbered migrations (pg_migrations.h), applied at
//   Open under an advisory lock; an incompatible newer schema is refused.
// - A lost connection fails the call (kUnavailable) and the next call reconnects.
//
// It is the ClusterStore too (postgres_cluster_store.cpp): the nodes table, the
// fenced claims and writes, and sessions (PgClusterSession, each on a
// connection of its own outside the pool).
#pragma once

#include <memory>
#include <string>

#include "store/cluster_store.h"
#include "store/pg_pool.h"
#include "store/store.h"

namespace tessera::store {

struct PostgresOptions {
  size_t max_connections = 8;
};

class PostgresJobStore final : public Store, public ClusterStore {
 public:
  // Connects to `conninfo` (a postgresql:// URI or a libpq key=value string) and
  // migrates the schema. Errors name the database (without its password): kUnavailable
  // when it cannot be reached, kUnsupported for an incompatible newer schema.
  static Result<std::unique_ptr<PostgresJobStore>> Open(const std::string& conninfo, PostgresOptions options = {});
  static int LatestSchemaVersion();

  // JobStore
  Result<int64_t> Insert(const Job& job) override;
  Result<Job> Get(const std::string& id) override;
  Status Update(const Job& job) override;
  Status UpdateAll(const std::vector<Job>& jobs) override;
  Status UpdateProgress(const std::string& id, double progress) override;
  Result<std::vector<Job>> List(const JobFilter& filter) override;
  Result<int64_t> Delete(const std::vector<std::string>& ids) override;
  Result<std::map<JobStatus, int64_t>> CountByStatus() override;
  Result<std::vector<double>> RecentDurations(const std::string& lane, JobKind kind, int limit) override;
  Result<int64_t> AddWebhook(const WebhookRegistration& registration) override;
  Result<std::vector<WebhookRegistration>> WebhooksFor(const std::string& job_id) override;
  Status AddWebhookAttempt(const WebhookAttemptRecord& attempt) override;
  Result<std::vector<WebhookAttemptRecord>> WebhookAttempts(const std::string& job_id, int64_t limit) override;

  // BatchStore (postgres_batch_store.cpp). The same failpoints as SQLite's:
  // "store.create_batch" and "store.retry_images" fail the call after every row
  // is written and before COMMIT.
  Result<std::vector<int64_t>> CreateBatch(const Batch& batch, const std::vector<BatchImage>& images,
                                           const std::vector<Job>& jobs) override;
  Result<Batch> GetBatch(const std::string& id) override;
  Result<std::vector<Batch>> ListBatches(const std::string& game_id, int64_t before_seq, int64_t limit) override;
  Result<std::vector<BatchImageRow>> ListBatchImages(const std::string& batch_id) override;
  Result<std::vector<int64_t>> RetryImages(const std::vector<ImageRetry>& retries) override;
  Status ScheduleImageRetry(const std::string& image_id, int64_t retry_at_ms) override;
  Result<std::vector<BatchImageRow>> ImagesDueForRetry(int64_t now_ms) override;
  Result<int64_t> NextImageRetryMs() override;
  Result<BatchImageRow> ImageForJob(const std::string& job_id) override;
  Result<bool> MarkBatchNotified(const std::string& batch_id, int64_t now_ms) override;
  Result<std::vector<std::string>> UnsettledBatchIds() override;
  Result<std::vector<std::string>> UnnotifiedBatchIds() override;

  // ClusterStore (postgres_cluster_store.cpp)
  Result<std::unique_ptr<ClusterSession>> OpenSession(const std::vector<std::string>& channels) override;
  Result<NodeRecord> RegisterNode(const NodeRecord& node, std::chrono::milliseconds lease) override;
  Status RenewLease(const std::string& node_id, int64_t incarnation, std::chrono::milliseconds lease) override;
  // A no-op for an incarnation already retired, reaped or replaced.
  Status RetireNode(const std::string& node_id, int64_t incarnation) override;
  Result<std::vector<NodeRecord>> ListNodes() override;
  Status ExtendLeases(std::chrono::milliseconds lease) override;
  Result<std::vector<NodeRecord>> ReapExpiredNodes() override;
  Result<std::vector<Job>> RunningOn(const std::string& node_id) override;
  Result<std::optional<Job>> Claim(const ClaimRequest& request, const std::function<Status(Job&)>& start) override;
  Status UpdateFenced(const Job& job, const Fence& fence) override;
  Status UpdateQueued(const Job& job) override;
  Result<std::vector<int64_t>> QueuedSeqs() override;
  Status UpdateProgressFenced(const std::string& id, const Fence& fence, double progress) override;
  Result<int64_t> QueuedBefore(int64_t seq) override;
  Result<std::vector<std::pair<int64_t, Job>>> JobEventsAfter(int64_t after_id, int limit) override;
  Result<int64_t> LatestJobEventId() override;
  Result<int64_t> PruneJobEvents(int64_t keep_last) override;
  Status Notify(const std::string& channel, const std::string& payload) override;

 private:
  PostgresJobStore(const std::string& conninfo, PostgresOptions options);

  // Inserts one job on `connection` (inside the caller's transaction, if any);
  // returns its seq. kInvalid for an empty or existing id or a progress outside
  // [0, 1].
  static Result<int64_t> InsertJob(pg::PgConnection& connection, const Job& job);
  // UPDATE of every mutable field of `job`; kNotFound when absent.
  static Status UpdateJob(pg::PgConnection& connection, const Job& job);
  // Why a fenced write of job `id` matched no row: kNotFound when the job is
  // gone, else kConflict saying where the job is now.
  static Status FenceFailure(pg::PgConnection& connection, const std::string& operation, const std::string& id);

  pg::PgPool pool_;
};

}  // namespace tessera::store
