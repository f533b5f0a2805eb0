// Answers and checks every route group shares.
#include <unistd.h>

#include <ctime>
#include <nlohmann/json.hpp>

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
