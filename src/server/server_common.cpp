// Answers and checks every route group shares.
#include <unistd.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "jobs/job_state.h"
#include "jobs/job_submission.h"
#include "server/server_state.h"

namespace tessera::server {

using nlohmann::json;

namespace {

json Timestamp(int64_t ms) {
  if (ms <= 0) return nullptr;
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(text + n, sizeof text - n, ".%03dZ", static_cast<int>(ms % 1000));
  return std::string(text);
}

}  // namespace

namespace {

// A video job's progress counts frames across its segments (jobs/video_runner.h):
// frames done and total, and an ETA from the rate so far. No lane holds a video
// job, so the scheduler's lane-based estimate does not apply to it.
void AddVideoProgress(const store::Job& job, json& out) {
  json params = json::parse(job.params_json, nullptr, false);
  if (!params.is_object()) return;
  int64_t total = params.value("frames_total", int64_t{0});
  int64_t done = job.status == store::JobStatus::kSuccess ? total
                                                           : static_cast<int64_t>(job.progress * static_cast<double>(total));
  size_t segments = params.contains("segments") && params["segments"].is_array() ? params["segments"].size() : 0;
  out["video"] = {{"frames_done", done}, {"frames_total", total}, {"segments", segments}};
  out["queue_position"] = nullptr;
  out["eta_seconds"] = nullptr;
  out["eta_source"] = nullptr;
  if (job.status == store::JobStatus::kRunning && job.progress > 0 && job.started_ms > 0) {
    double elapsed = static_cast<double>(jobs::NowMs() - job.started_ms) / 1000.0;
    out["eta_seconds"] = static_cast<int64_t>(elapsed * (1.0 - job.progress) / job.progress + 0.5);
    out["eta_source"] = "video_frames";
  }
}

}  // namespace

std::string JobViewJson(const JobServer::State& state, const jobs::JobView& view) {
  const store::Job& job = view.job;
  bool done = job.status == store::JobStatus::kSuccess;
  json out = {
      {"id", job.id},
      {"kind", store::JobKindName(job.kind)},
      {"status", store::JobStatusName(job.status)},
      {"progress", job.progress},
      {"eta_seconds", view.eta_seconds ? json(static_cast<int64_t>(*view.eta_seconds + 0.5)) : json(nullptr)},
      {"eta_source", view.eta_source.empty() ? json(nullptr) : json(view.eta_source)},
      {"queue_position", view.queue_position ? json(*view.queue_position) : json(nullptr)},
      {"gpu_id", job.gpu_id >= 0 ? json(job.gpu_id) : json(nullptr)},
      {"lane", job.lane.empty() ? json(nullptr) : json(job.lane)},
      {"filename", job.filename.empty() ? json(nullptr) : json(job.filename)},
      {"file_url", done ? json(state.config.host_base_url + "/files/" + job.filename) : json(nullptr)},
      {"error", job.error.empty() ? json(nullptr) : json(job.error)},
      {"attempts", job.attempts},
      {"created_at", Timestamp(job.created_ms)},
      {"started_at", Timestamp(job.started_ms)},
      {"finished_at", Timestamp(job.finished_ms)},
  };
  if (job.kind == store::JobKind::kGenerate) out["prompt"] = job.prompt;
  if (job.kind == store::JobKind::kVideo) AddVideoProgress(job, out);
  if (!job.batch_id.empty()) out["batch_id"] = job.batch_id;
  json params = json::parse(job.params_json, nullptr, false);
  if (params.is_object()) out["params"] = params;
  return out.dump();
}

bool IsSafeFileName(const std::string& name) { return jobs::IsSafeResultName(name); }

std::vector<std::string> SplitCsv(const std::string& text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string part = text.substr(start, comma - start);
    size_t first = part.find_first_not_of(" \t");
    size_t last = part.find_last_not_of(" \t");
    if (first != std::string::npos) parts.push_back(part.substr(first, last - first + 1));
    start = comma + 1;
  }
  return parts;
}

bool RemoveResultFile(const JobServer::State& state, const std::string& filename) {
  if (!IsSafeFileName(filename)) return false;
  return ::unlink((state.config.ResultsDir() + "/" + filename).c_str()) == 0;
}

void RemoveThumbnails(const JobServer::State& state, const std::string& job_id) {
  for (const char* of : {"input", "result"}) {
    ::unlink((state.config.data_dir + "/thumbs/" + job_id + "-" + of + ".webp").c_str());
  }
}

}  // namespace tessera::server
