// Image batches (seed 004): creation in one transaction, one upscale job per
// image on the scheduler, per-image failure, automatic retries after a delay,
// manual retries, and a callback once a batch settles.
//
// Image and batch statuses are derived (src/jobs/batch_state.h). Automatic
// retries are for failures of the machinery (a worker that kept dying, out of
// memory, a timeout); an image the worker rejected (BAD_IMAGE, INVALID, LIMIT,
// UNSUPPORTED) fails at once — retrying it cannot help — though a manual retry
// may still ask for it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "jobs/batch_state.h"
#include "jobs/scheduler.h"
#include "store/batch_store.h"
#include "store/job_store.h"

namespace tessera::jobs {

struct BatchOptions {
  int max_retries = 3;  // retries of one image after its first attempt
  std::chrono::milliseconds retry_delay{std::chrono::minutes(5)};
};

struct NewBatchImage {
  std::string image_id;       // UUID v4, chosen by the caller (it named the stored file)
  std::string original_name;  // the client's name, for display
  std::string input_path;     // the stored original
  std::string result_name;    // file name of the result inside the batch's results folder
};

struct NewBatch {
  std::string batch_id;
  std::string game_id;
  std::string params_json;  // the upscale params of every image (engine, quality, format)
  std::string results_dir;  // where the results go
  std::string webhook_url;
  std::string client;
  std::vector<NewBatchImage> images;
};

class BatchRunner {
 public:
  // `on_settled` is called (from a lane or the retry thread) when a batch has
  // settled and its notification was not sent before — once per batch, across
  // restarts.
  BatchRunner(store::JobStore& jobs, store::BatchStore& batches, Scheduler& scheduler, BatchOptions options,
              std::function<void(const std::string& batch_id)> on_settled);
  ~BatchRunner();

  // Resumes what a previous process left: failures not yet scheduled for retry,
  // settled batches not yet notified; starts the retry thread. Call after the
  // scheduler started (queued batch jobs are placed by it).
  Status Start();
  void Stop();

  // Commits the batch, its images and their jobs in one transaction, then
  // places the jobs. Nothing is written when it fails.
  Result<store::Batch> Create(const NewBatch& batch);
  // Retries now every failed image that has a retry left; returns how many.
  // kLimit when none can be retried (no failed image, or none with a retry left).
  Result<int64_t> RetryFailed(const std::string& batch_id);
  // Scheduler listener: a batch job changed.
  void OnJobChanged(const JobView& view);

  const BatchOptions& options() const { return options_; }

 private:
  void RetryLoop();
  // Schedules an automatic retry for a failed image when it may have one.
  void ScheduleRetryIfDue(const store::BatchImageRow& row, const store::Batch& batch);
  void CheckSettled(const std::string& batch_id);
  store::Job MakeJob(const store::Batch& batch, const store::BatchImage& image, const std::string& result_name,
                     const std::string& params_json) const;
  Result<std::vector<store::Job>> RetryRows(const store::Batch& batch, const std::vector<store::BatchImageRow>& rows);

  store::JobStore& jobs_;
  store::BatchStore& batches_;
  Scheduler& scheduler_;
  BatchOptions options_;
  std::function<void(const std::string&)> on_settled_;

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool started_ = false;
  uint64_t wake_generation_ = 0;
  std::thread retry_thread_;
};

// True for failures retrying cannot fix (the worker rejected the image itself).
bool IsPermanentImageFailure(const std::string& job_error);

}  // namespace tessera::jobs
