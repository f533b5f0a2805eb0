#include "jobs/batch_runner.h"

#include <nlohmann/json.hpp>

#include "jobs/job_state.h"
#include "util/log.h"
#include "util/uuid.h"

namespace tessera::jobs {

using store::Job;
using store::JobStatus;

bool IsPermanentImageFailure(const std::string& job_error) {
  for (const char* prefix : {"BAD_IMAGE", "INVALID", "LIMIT", "UNSUPPORTED", "input image:"}) {
    if (job_error.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

BatchRunner::BatchRunner(store::JobStore& jobs, store::BatchStore& batches, Scheduler& scheduler,
                         BatchOptions options, std::function<void(const std::string&)> on_settled)
    : jobs_(jobs), batches_(batches), scheduler_(scheduler), options_(options), on_settled_(std::move(on_settled)) {}

BatchRunner::~BatchRunner() { Stop(); }

Job BatchRunner::MakeJob(const store::Batch& batch, const store::BatchImage& image, const std::string& result_name,
                         const std::string& params_json) const {
  Job job;
  job.id = image.job_id.empty() ? NewUuidV4() : image.job_id;
  job.kind = store::JobKind::kUpscale;
  job.status = JobStatus::kQueued;
  job.batch_id = batch.id;
  job.params_json = params_json;
  job.input_path = image.input_path;
  job.filename = result_name;
  job.created_ms = NowMs();
  return job;
}

Result<store::Batch> BatchRunner::Create(const NewBatch& request) {
  if (request.images.empty()) return InvalidError("a batch needs at least one image");
  nlohmann::json params = nlohmann::json::parse(request.params_json, nullptr, false);
  if (!params.is_object()) return InvalidError("batch parameters are not a JSON object");
  params["output_dir"] = request.results_dir;
  std::string job_params = params.dump();

  store::Batch batch;
  batch.id = request.batch_id;
  batch.game_id = request.game_id;
  batch.total_images = static_cast<int64_t>(request.images.size());
  batch.max_retries = options_.max_retries;
  batch.params_json = request.params_json;
  batch.webhook_url = request.webhook_url;
  batch.created_ms = NowMs();

  std::vector<store::BatchImage> images;
  std::vector<Job> jobs;
  images.reserve(request.images.size());
  jobs.reserve(request.images.size());
  for (size_t i = 0; i < request.images.size(); ++i) {
    const NewBatchImage& in = request.images[i];
    store::BatchImage image;
    image.id = in.image_id;
    image.batch_id = batch.id;
    image.position = static_cast<int64_t>(i);
    image.original_name = in.original_name;
    image.input_path = in.input_path;
    image.job_id = NewUuidV4();
    image.attempts = 1;
    Job job = MakeJob(batch, image, in.result_name, job_params);
    job.client = request.client;
    images.push_back(image);
    jobs.push_back(std::move(job));
  }
  auto seqs = batches_.CreateBatch(batch, images, jobs);
  if (!seqs.ok()) return seqs.status();
  for (size_t i = 0; i < jobs.size(); ++i) jobs[i].seq = (*seqs)[i];
  scheduler_.Adopt(jobs);
  LogInfo("batch_created").Field("batch_id", batch.id).Field("game_id", batch.game_id)
      .Field("images", batch.total_images);
  return batch;
}

Result<std::vector<Job>> BatchRunner::RetryRows(const store::Batch& batch, const std::vector<store::BatchImageRow>& rows) {
  std::vector<store::BatchStore::ImageRetry> retries;
  for (const auto& row : rows) {
    auto previous = jobs_.Get(row.image.job_id);
    if (!previous.ok()) return previous.status();
    store::BatchImage image = row.image;
    image.job_id.clear();  // a new job for the new attempt
    Job job = MakeJob(batch, image, previous->filename, previous->params_json);
    job.client = previous->client;
    retries.push_back({row.image.id, std::move(job), row.image.job_id});
  }
  auto seqs = batches_.RetryImages(retries);
  if (!seqs.ok()) return seqs.status();
  std::vector<Job> jobs;
  for (size_t i = 0; i < retries.size(); ++i) {
    if ((*seqs)[i] == 0) continue;  // another server of the cluster retried it first
    retries[i].job.seq = (*seqs)[i];
    jobs.push_back(std::move(retries[i].job));
  }
  scheduler_.Adopt(jobs);
  return jobs;
}

Result<int64_t> BatchRunner::RetryFailed(const std::string& batch_id) {
  auto batch = batches_.GetBatch(batch_id);
  if (!batch.ok()) return batch.status();
  auto rows = batches_.ListBatchImages(batch_id);
  if (!rows.ok()) return rows.status();
  std::vector<store::BatchImageRow> failed;
  for (const auto& row : *rows) {
    if (ImageMayRetry(row, batch->max_retries)) failed.push_back(row);
  }
  if (failed.empty()) {
    return LimitError("batch " + batch_id + " has no failed image with a retry left (at most " +
                        std::to_string(batch->max_retries) + " retries per image)");
  }
  auto jobs = RetryRows(*batch, failed);
  if (!jobs.ok()) return jobs.status();
  LogInfo("batch_retry").Field("batch_id", batch_id).Field("images", failed.size()).Field("trigger", "request");
  return static_cast<int64_t>(failed.size());
}

void BatchRunner::ScheduleRetryIfDue(const store::BatchImageRow& row, const store::Batch& batch) {
  if (row.image.retry_at_ms > 0 || row.job_status != JobStatus::kError) return;  // canceled: on request only
  if (!ImageMayRetry(row, batch.max_retries) || IsPermanentImageFailure(row.job_error)) return;
  int64_t due = std::max<int64_t>(row.job_finished_ms, 1) + options_.retry_delay.count();
  if (Status s = batches_.ScheduleImageRetry(row.image.id, due); !s.ok()) {
    LogError("batch_retry_not_scheduled").Field("image_id", row.image.id).Field("error", s.ToString());
    return;
  }
  LogInfo("batch_retry_scheduled").Field("batch_id", batch.id).Field("image_id", row.image.id)
      .Field("attempt", row.image.attempts + 1).Field("in_ms", due - NowMs());
  {
    std::lock_guard lock(mutex_);
    wake_generation_ += 1;
  }
  wake_.notify_all();
}

void BatchRunner::CheckSettled(const std::string& batch_id) {
  auto batch = batches_.GetBatch(batch_id);
  if (!batch.ok() || batch->notified_ms > 0) return;
  auto rows = batches_.ListBatchImages(batch_id);
  if (!rows.ok()) return;
  BatchSummary summary = SummarizeBatch(*rows, batch->max_retries);
  if (!summary.settled) return;
  auto first = batches_.MarkBatchNotified(batch_id, NowMs());
  if (!first.ok() || !*first) return;
  LogInfo("batch_settled").Field("batch_id", batch_id).Field("status", BatchStatusName(summary.status))
      .Field("completed", summary.completed).Field("failed", summary.failed).Field("total", summary.total);
  if (on_settled_) on_settled_(batch_id);
}

void BatchRunner::OnJobChanged(const JobView& view) {
  const Job& job = view.job;
  if (job.batch_id.empty() || !store::IsFinished(job.status)) return;
  auto row = batches_.ImageForJob(job.id);
  if (!row.ok()) return;  // an older attempt's job: the image has moved on
  auto batch = batches_.GetBatch(job.batch_id);
  if (!batch.ok()) return;
  ScheduleRetryIfDue(*row, *batch);
  // Images still queued or running here: not settled, no need to read them all.
  if (scheduler_.HasBatchWork(job.batch_id)) return;
  CheckSettled(job.batch_id);
}

Status BatchRunner::Start() {
  // A previous process may have died between a job's end and its retry being
  // scheduled, or before a settled batch was announced: look again.
  auto unnotified = batches_.UnnotifiedBatchIds();
  if (!unnotified.ok()) return unnotified.status();
  for (const std::string& id : *unnotified) {
    auto batch = batches_.GetBatch(id);
    auto rows = batches_.ListBatchImages(id);
    if (!batch.ok() || !rows.ok()) continue;
    for (const auto& row : *rows) ScheduleRetryIfDue(row, *batch);
    CheckSettled(id);
  }
  std::lock_guard lock(mutex_);
  stopping_ = false;
  started_ = true;
  retry_thread_ = std::thread([this] { RetryLoop(); });
  return Status::Ok();
}

void BatchRunner::Stop() {
  {
    std::lock_guard lock(mutex_);
    if (!started_) return;
    stopping_ = true;
    wake_generation_ += 1;
  }
  wake_.notify_all();
  if (retry_thread_.joinable()) retry_thread_.join();
  started_ = false;
}

void BatchRunner::RetryLoop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    uint64_t generation = wake_generation_;  // a retry scheduled after this wakes the wait below
    lock.unlock();
    auto next = batches_.NextImageRetryMs();
    int64_t now = NowMs();
    if (next.ok() && *next > 0 && *next <= now) {
      auto due = batches_.ImagesDueForRetry(now);
      if (due.ok()) {
        std::map<std::string, std::vector<store::BatchImageRow>> by_batch;
        for (const auto& row : *due) by_batch[row.image.batch_id].push_back(row);
        for (const auto& [batch_id, rows] : by_batch) {
          auto batch = batches_.GetBatch(batch_id);
          if (!batch.ok()) continue;
          auto jobs = RetryRows(*batch, rows);
          if (!jobs.ok()) {
            LogError("batch_retry_failed").Field("batch_id", batch_id).Field("error", jobs.status().ToString());
            continue;
          }
          LogInfo("batch_retry").Field("batch_id", batch_id).Field("images", rows.size()).Field("trigger", "delay");
        }
      }
      lock.lock();
      continue;
    }
    lock.lock();
    if (stopping_) break;
    auto woken = [&] { return stopping_ || wake_generation_ != generation; };
    if (next.ok() && *next > 0) {
      wake_.wait_for(lock, std::chrono::milliseconds(*next - now), woken);
    } else {
      wake_.wait(lock, woken);
    }
  }
}

}  // namespace tessera::jobs
