// The batch part of the store (seed 004). Same contract as JobStore: thread-safe,
// each call atomic and durable when it returns ok, errors as values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/batch.h"
#include "store/job.h"
#include "util/status.h"

namespace tessera::store {

class BatchStore {
 public:
  virtual ~BatchStore() = default;

  // One transaction: the batch, its images and one queued job per image (jobs[i]
  // belongs to images[i]; image.job_id must equal jobs[i].id). Either all of it is
  // committed or none. Returns the jobs' seqs, in order.
  virtual Result<std::vector<int64_t>> CreateBatch(const Batch& batch, const std::vector<BatchImage>& images,
                                                   const std::vector<Job>& jobs) = 0;
  virtual Result<Batch> GetBatch(const std::string& id) = 0;
  // Batches newest first, with their seq: those of `game_id` (empty: all), with a
  // seq below `before_seq` (0: from the newest), at most `limit` (> 0).
  virtual Result<std::vector<Batch>> ListBatches(const std::string& game_id, int64_t before_seq, int64_t limit) = 0;
  // The batch's images in upload order, each joined with its current job.
  virtual Result<std::vector<BatchImageRow>> ListBatchImages(const std::string& batch_id) = 0;

  // One transaction: for each (image id, new job) pair, inserts the job, points
  // the image at it, adds one to its attempts and clears its retry_at_ms. kInvalid
  // (nothing written) when an image does not exist. Returns the jobs' seqs.
  struct ImageRetry {
    std::string image_id;
    Job job;
    // The job this retry replaces: the retry is made only while the image still
    // points at it, so that two servers retrying one image (a cluster) make one
    // new job. Its seq is then 0 and nothing is written for it. Empty: always.
    std::string replaces_job_id;
  };
  virtual Result<std::vector<int64_t>> RetryImages(const std::vector<ImageRetry>& retries) = 0;
  // Sets (or, with 0, clears) an image's automatic retry time.
  virtual Status ScheduleImageRetry(const std::string& image_id, int64_t retry_at_ms) = 0;
  // Images with 0 < retry_at_ms <= now_ms, oldest due first.
  virtual Result<std::vector<BatchImageRow>> ImagesDueForRetry(int64_t now_ms) = 0;
  // The earliest scheduled retry time of any image; 0 when none.
  virtual Result<int64_t> NextImageRetryMs() = 0;
  // The image whose current job is `job_id`; kNotFound when the job is no image's.
  virtual Result<BatchImageRow> ImageForJob(const std::string& job_id) = 0;
  // Records that the completion webhook was queued; false when it already was
  // (so a batch notifies once, even across restarts).
  virtual Result<bool> MarkBatchNotified(const std::string& batch_id, int64_t now_ms) = 0;
  // Batches with at least one image whose job is not finished or that has a retry
  // scheduled (resumed after a restart).
  virtual Result<std::vector<std::string>> UnsettledBatchIds() = 0;
  // Batches whose completion webhook was not queued yet (notified_ms = 0), oldest
  // first: on a restart they are checked again, so none is forgotten.
  virtual Result<std::vector<std::string>> UnnotifiedBatchIds() = 0;
};

}  // namespace tessera::store
