// The job store interface: durable jobs and the history the ETA is computed from.
//
// Contract for every implementation (SQLite now, PostgreSQL later):
// - Every call is thread-safe and atomic; a call that returns ok has been committed
//   durably (a job is acknowledged to a client only after Insert returned ok).
// - Errors are values: kNotFound for an unknown id, kIo for storage failures, with a
//   message naming the operation. Nothing throws out of the store.
// - The store never decides state transitions (src/jobs/job_state.h does); it
//   persists what it is given.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "store/job.h"
#include "util/status.h"

namespace tessera::store {

// Selects jobs; empty fields select everything. Results come in submission order
// (seq ascending) unless `newest_first`.
struct JobFilter {
  std::vector<std::string> ids;
  std::vector<JobStatus> statuses;
  std::optional<JobKind> kind;
  std::optional<std::string> prompt;    // exact match
  std::optional<std::string> filename;  // exact match
  // Jobs whose id, prompt or result file name contains this text (ignoring
  // ASCII case): the dashboard's search.
  std::optional<std::string> search;
  std::optional<int64_t> finished_before_ms;  // finished jobs with finished_ms < this
  // Paging by submission order: only jobs with seq beyond this one (below it when
  // newest_first, above it otherwise): the cursor of list routes.
  std::optional<int64_t> after_seq;
  bool newest_first = false;
  int64_t limit = 0;  // 0: no limit
};

// A registered callback (POST /webhook): called for every finished job, or only
// for `job_id` when set.
struct WebhookRegistration {
  int64_t id = 0;  // assigned by the store
  std::string url;
  std::string job_id;  // empty: every job
  int64_t created_ms = 0;
};

// One attempt to deliver a job's webhook (GET /jobs/{id}/webhooks), kept with
// the job and deleted with it.
struct WebhookAttemptRecord {
  std::string delivery_id;  // the X-Tessera-Delivery of every attempt of one delivery
  std::string job_id;
  std::string url;
  std::string event;  // "job.success"...
  int attempt = 0;    // 1-based
  bool delivered = false;
  bool final = false;  // no attempt follows: delivered, or abandoned after the last
  std::string error;   // why it failed; empty when delivered
  int64_t at_ms = 0;
};

class JobStore {
 public:
  virtual ~JobStore() = default;

  // Inserts a new job; assigns and returns its seq. kInvalid if the id exists.
  virtual Result<int64_t> Insert(const Job& job) = 0;
  virtual Result<Job> Get(const std::string& id) = 0;
  // Writes every mutable field of the job with this id (everything but id, kind,
  // seq, created_ms). kNotFound when absent.
  virtual Status Update(const Job& job) = 0;
  // Update for many jobs in one transaction: all written or none (kNotFound,
  // nothing written, when one is absent).
  virtual Status UpdateAll(const std::vector<Job>& jobs) = 0;
  // The cheap, frequent write: progress only. kNotFound when absent.
  virtual Status UpdateProgress(const std::string& id, double progress) = 0;
  virtual Result<std::vector<Job>> List(const JobFilter& filter) = 0;
  // Deletes the rows; unknown ids are ignored. Returns how many were deleted.
  virtual Result<int64_t> Delete(const std::vector<std::string>& ids) = 0;
  // Number of jobs in each status (every status present, zero included).
  virtual Result<std::map<JobStatus, int64_t>> CountByStatus() = 0;
  // Run durations in seconds (finished_ms - started_ms) of the last `limit`
  // successful jobs of this kind on this lane, most recent first. The ETA's
  // moving average (seed 001, tier C).
  virtual Result<std::vector<double>> RecentDurations(const std::string& lane, JobKind kind, int limit) = 0;

  virtual Result<int64_t> AddWebhook(const WebhookRegistration& registration) = 0;
  // Registrations that apply to this job: global ones and those for its id.
  virtual Result<std::vector<WebhookRegistration>> WebhooksFor(const std::string& job_id) = 0;
  // Records an attempt; kNotFound when the job no longer exists.
  virtual Status AddWebhookAttempt(const WebhookAttemptRecord& attempt) = 0;
  // The job's attempts, newest first, at most `limit`.
  virtual Result<std::vector<WebhookAttemptRecord>> WebhookAttempts(const std::string& job_id, int64_t limit) = 0;
};

}  // namespace tessera::store
