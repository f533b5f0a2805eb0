#include "jobs/job_submission.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

#include "util/uuid.h"

namespace tessera::jobs {
namespace {

using store::Job;
using store::JobStatus;

constexpr size_t kMaxVideoNameBytes = 200;

bool EndsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool FileExists(const std::string& dir, const std::string& name) {
  return ::access((dir + "/" + name).c_str(), F_OK) == 0;
}

// A result name no live or finished job and no existing file already holds.
Status CheckNameFree(store::JobStore& store, const std::string& results_dir, const std::string& filename) {
  store::JobFilter filter;
  filter.filename = filename;
  filter.statuses = {JobStatus::kQueued, JobStatus::kRunning, JobStatus::kSuccess};
  auto taken = store.List(filter);
  if (!taken.ok()) return taken.status();
  if (!taken->empty()) return LimitError("filename " + filename + " is already used by job " + taken->front().id);
  if (FileExists(results_dir, filename)) return LimitError("a file named " + filename + " already exists");
  return Status::Ok();
}

}  // namespace

bool IsSafeResultName(const std::string& name) {
  if (name.empty() || name.size() > 255 || name.front() == '.') return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string DefaultVideoName(const Job& job) {
  std::string device = job.gpu_id >= 0 ? "gpu" + std::to_string(job.gpu_id) : "cpu" + job.lane.substr(job.lane.find(':') + 1);
  std::time_t seconds = static_cast<std::time_t>(job.created_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d_%H-%M-%S", &utc);
  return "result_" + device + "_" + stamp + "_" + job.id.substr(0, 8) + ".mp4";
}

Result<JobView> SubmitGenerate(Scheduler& scheduler, store::JobStore& store, const std::string& results_dir,
                               const GenerateRequest& request) {
  Job job;
  job.filename = request.filename;
  if (!job.filename.empty()) {
    if (!EndsWith(job.filename, ".mp4")) job.filename += ".mp4";
    if (!IsSafeResultName(job.filename) || job.filename.size() > kMaxVideoNameBytes) {
      return InvalidError("filename may use letters, digits, '.', '_' and '-' only, must not start with '.', and "
                          "must be at most 200 characters");
    }
  }
  job.id = NewUuidV4();
  job.kind = store::JobKind::kGenerate;
  job.prompt = request.prompt;
  job.params_json =
      nlohmann::json{{"size", request.size.ToString()}, {"resize_mode", request.resize_mode}}.dump();
  job.webhook_url = request.webhook_url;
  job.client = request.client;
  return scheduler.Submit(job, [&](Job& placed) -> Status {
    if (placed.filename.empty()) placed.filename = DefaultVideoName(placed);
    return CheckNameFree(store, results_dir, placed.filename);
  });
}

Result<JobView> SubmitUpscale(Scheduler& scheduler, const std::string& results_dir, const UpscaleRequest& request) {
  Job job;
  job.id = NewUuidV4();
  job.kind = store::JobKind::kUpscale;
  job.params_json = request.params_json;
  job.client = request.client;
  job.webhook_url = request.webhook_url;
  if (!request.filename.empty()) {
    job.filename = request.filename;
    if (!EndsWith(job.filename, request.extension)) job.filename += request.extension;
    if (!IsSafeResultName(job.filename)) {
      return InvalidError("filename may use letters, digits, '.', '_' and '-' only, and must not start with '.'");
    }
    if (FileExists(results_dir, job.filename)) return LimitError("a file named " + job.filename + " already exists");
  } else {
    job.filename = "upscale_" + request.model + "_" + job.id.substr(0, 8) + request.extension;
  }
  job.input_path = request.uploads_dir + "/" + job.id + ".input";
  if (Status stored = request.store_input(job.input_path); !stored.ok()) return stored;
  if (request.before_submit) request.before_submit(job.id);
  auto view = scheduler.Submit(job);
  if (!view.ok()) ::unlink(job.input_path.c_str());
  return view;
}

Result<JobView> SubmitRetry(Scheduler& scheduler, store::JobStore& store, const std::string& results_dir,
                            const std::string& uploads_dir, const Job& failed, const std::string& client) {
  if (failed.status != JobStatus::kError && failed.status != JobStatus::kCanceled) {
    return LimitError("job " + failed.id + " is " + std::string(store::JobStatusName(failed.status)) +
                      ": only failed or canceled jobs can be retried");
  }
  if (!failed.batch_id.empty()) {
    return LimitError("job " + failed.id + " is an image of batch " + failed.batch_id +
                      ": retry it with POST /images/batches/" + failed.batch_id + "/retry");
  }
  if (failed.kind == store::JobKind::kVideo || failed.kind == store::JobKind::kVideoSegment) {
    // A segment is part of its video, and a failed video's source may be gone
    // with it: the client sends the video again (docs/video.md).
    return LimitError("job " + failed.id + " is part of a video job: send the video again with POST /upscale/video");
  }
  nlohmann::json params = nlohmann::json::parse(failed.params_json, nullptr, false);
  if (!params.is_object()) return InvalidError("job " + failed.id + " has unreadable parameters");
  if (failed.kind == store::JobKind::kGenerate) {
    GenerateRequest request;
    request.prompt = failed.prompt;
    auto size = ParseApiSize(params.value("size", ""));
    if (!size.ok()) return InvalidError("job " + failed.id + ": " + size.status().message());
    request.size = *size;
    request.resize_mode = params.value("resize_mode", "pad");
    request.webhook_url = failed.webhook_url;
    request.client = client;
    return SubmitGenerate(scheduler, store, results_dir, request);
  }
  if (failed.input_path.empty() || ::access(failed.input_path.c_str(), R_OK) != 0) {
    return NotFoundError("job " + failed.id + ": its input image is no longer stored");
  }
  UpscaleRequest request;
  request.params_json = failed.params_json;
  request.model = params.value("model", "upscale");
  size_t dot = failed.filename.rfind('.');
  request.extension = dot == std::string::npos ? ".png" : failed.filename.substr(dot);
  request.webhook_url = failed.webhook_url;
  request.client = client;
  request.uploads_dir = uploads_dir;
  request.store_input = [&](const std::string& input_path) -> Status {
    if (::link(failed.input_path.c_str(), input_path.c_str()) != 0) {
      return IoError("keeping the input of job " + failed.id + " for its retry: " + std::strerror(errno));
    }
    return Status::Ok();
  };
  return SubmitUpscale(scheduler, results_dir, request);
}

}  // namespace tessera::jobs
