// What the dashboard reads and does beyond the job API (issue 17), each usable
// by any client:
//   GET  /models                 the installed models with a description each
//   GET  /jobs/counts            jobs by status
//   POST /jobs/{id}/retry        a failed or canceled job run again, as a new job
//   GET  /jobs/{id}/log          the tail of logs/{id}.log (?tail_kb=, 1-1024, default 16)
//   GET  /jobs/{id}/input        an upscale's stored original (the "before" image)
//   GET  /jobs/{id}/result       its result, wherever it is kept (results/ or its batch's folder)
//   GET  /jobs/{id}/thumbnail    a small WebP of its input or result (?of=), made once, then cached
//   GET  /jobs/{id}/webhooks     every attempt to deliver its webhooks, newest first
//   GET  /images/batches         batches newest first with their counts (?game_id=, ?limit=, ?cursor=)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sys/wait.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine/model_catalog.h"
#include "imaging/image_magic.h"
#include "jobs/batch_state.h"
#include "jobs/job_submission.h"
#include "server/query_params.h"
#include "server/server_state.h"
#include "util/file_io.h"
#include "util/log.h"
#include "util/subprocess.h"

namespace tessera::server {
namespace {

using nlohmann::json;

std::string Describe(const engine::ModelEntry& model) {
  std::string scale = std::to_string(model.scale) + "×";
  std::string noise = model.noise >= 0 ? ", denoise level " + std::to_string(model.noise) : "";
  switch (model.family) {
    case engine::ModelFamily::kRealEsrgan:
      if (model.name.find("animevideov3") != std::string::npos) {
        return "Real-ESRGAN anime video v3, " + scale + ": small and fast, for drawn art and video frames";
      }
      if (model.name.find("anime") != std::string::npos) {
        return "Real-ESRGAN x4plus anime, " + scale + ": illustrations, clean lines; slower";
      }
      if (model.name.find("fast") != std::string::npos) return "Real-ESRGAN fast, " + scale + ": photos, quicker";
      return "Real-ESRGAN, " + scale + ": photos and general images; the largest network, slowest";
    case engine::ModelFamily::kRealCugan:
      return "Real-CUGAN, " + scale + noise + ": anime and illustrations, keeps texture";
    case engine::ModelFamily::kWaifu2xCunet:
      return "waifu2x CUNet, " + scale + noise + ": artwork, removes JPEG noise";
  }
  return scale;
}

void Models(JobServer::State& state, const HttpRequest&, HttpResponse& response) {
  std::string dir = state.config.model_dir.empty() ? engine::DefaultModelDir() : state.config.model_dir;
  json models = json::array();
  auto manifest = engine::ReadManifest(dir);
  if (manifest.ok()) {
    for (const engine::ModelEntry& model : *manifest) {
      models.push_back(json{{"name", model.name}, {"family", engine::ModelFamilyName(model.family)},
                            {"scale", model.scale}, {"noise", model.noise >= 0 ? json(model.noise) : json(nullptr)},
                            {"description", Describe(model)}});
    }
  }
  models.push_back(json{{"name", "lanczos"}, {"family", "lanczos"}, {"scale", nullptr}, {"noise", nullptr},
                        {"description", "Lanczos resampling, 2-4× (scale=): no network, instant, softer"}});
  ReplyJson(response, 200,
            json{{"default", state.config.default_model}, {"models", models},
                 {"installed", manifest.ok()},
                 {"detail", manifest.ok() ? json(nullptr) : json(manifest.status().message())}}
                .dump());
}

void Counts(JobServer::State& state, const HttpRequest&, HttpResponse& response) {
  auto counts = state.store->CountByStatus();
  if (!counts.ok()) return ReplyStatus(response, counts.status());
  json answer = json::object();
  int64_t total = 0;
  for (const auto& [status, count] : *counts) {
    answer[std::string(store::JobStatusName(status))] = count;
    total += count;
  }
  answer["total"] = total;
  ReplyJson(response, 200, answer.dump());
}

Result<store::Job> FindJob(JobServer::State& state, const std::string& id) {
  auto job = state.store->Get(id);
  if (!job.ok() && job.status().code() == StatusCode::kNotFound) return NotFoundError("no job " + id);
  return job;
}

void Retry(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  auto failed = FindJob(state, request.captures[0]);
  if (!failed.ok()) return ReplyStatus(response, failed.status());
  auto view = jobs::SubmitRetry(*state.scheduler, *state.store, state.config.ResultsDir(), state.config.UploadsDir(),
                                *failed, request.remote_addr);
  if (!view.ok()) return ReplyStatus(response, view.status());
  LogInfo("job_retried").Field("job_id", view->job.id).Field("retry_of", failed->id).Field("client", request.remote_addr);
  json answer = json::parse(JobViewJson(state, *view));
  answer["retry_of"] = failed->id;
  answer["status_url"] = "/status/" + view->job.id;
  response.SetHeader("Location", "/status/" + view->job.id);
  ReplyJson(response, 202, answer.dump());
}

// The last `tail_kb` KiB, from the first whole line in them.
void Log(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  auto job = FindJob(state, request.captures[0]);
  if (!job.ok()) return ReplyStatus(response, job.status());
  auto tail_kb = IntegerParam(request, "tail_kb", 16, 1, 1024);
  if (!tail_kb.ok()) return ReplyStatus(response, tail_kb.status());
  std::string text;
  int fd = ::open((state.config.LogsDir() + "/" + job->id + ".log").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  bool truncated = false;
  if (fd >= 0) {
    struct stat info {};
    if (::fstat(fd, &info) == 0 && S_ISREG(info.st_mode)) {
      off_t want = static_cast<off_t>(*tail_kb) * 1024;
      off_t from = info.st_size > want ? info.st_size - want : 0;
      text.resize(static_cast<size_t>(info.st_size - from));
      ssize_t n = ::pread(fd, text.data(), text.size(), from);
      text.resize(n > 0 ? static_cast<size_t>(n) : 0);
      if (from > 0) {
        truncated = true;
        size_t newline = text.find('\n');
        text.erase(0, newline == std::string::npos ? 0 : newline + 1);
      }
    }
    ::close(fd);
  }
  response.SetHeader("Cache-Control", "no-store");
  response.SetHeader("X-Log-Truncated", truncated ? "true" : "false");
  response.status = 200;
  response.content_type = "text/plain; charset=utf-8";
  response.body = std::move(text);
}

void Input(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  auto job = FindJob(state, request.captures[0]);
  if (!job.ok()) return ReplyStatus(response, job.status());
  if (job->input_path.empty()) return ReplyError(response, 404, "job " + job->id + " has no input image");
  size_t slash = job->input_path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : job->input_path.substr(0, slash);
  std::string name = slash == std::string::npos ? job->input_path : job->input_path.substr(slash + 1);
  ServeFileAt(dir, name, request, response);
  if (response.status != 200 && response.status != 206) return;
  // Stored inputs are named "<id>.input": the type comes from the bytes.
  uint8_t head[imaging::kImageMagicBytes] = {};
  int fd = ::open(job->input_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  ssize_t n = fd >= 0 ? ::pread(fd, head, sizeof head, 0) : 0;
  if (fd >= 0) ::close(fd);
  auto format = imaging::SniffImageFormat(std::span<const uint8_t>(head, n > 0 ? static_cast<size_t>(n) : 0));
  if (response.status == 200) response.content_type = format ? "image/" + std::string(*format) : "application/octet-stream";
  response.SetHeader("X-Content-Type-Options", "nosniff");
}

constexpr int kThumbnailSide = 256;

// Where a job's result image is: the results folder, or its batch's own folder.
std::string ResultPath(const JobServer::State& state, const store::Job& job) {
  json params = json::parse(job.params_json, nullptr, false);
  std::string dir = params.is_object() && params.contains("output_dir") && params["output_dir"].is_string()
                        ? params["output_dir"].get<std::string>()
                        : state.config.ResultsDir();
  return dir + "/" + job.filename;
}

bool IsImageName(const std::string& name) {
  for (const char* extension : {".png", ".jpg", ".jpeg", ".webp"}) {
    std::string suffix(extension);
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) return true;
  }
  return false;
}

// A batch image's result lives in its batch's folder, not in results/, so
// /files/{name} cannot serve it: this serves any job's, like a file (Range, ETag).
void Result(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  auto job = FindJob(state, request.captures[0]);
  if (!job.ok()) return ReplyStatus(response, job.status());
  if (job->status != store::JobStatus::kSuccess || !IsSafeFileName(job->filename)) {
    return ReplyError(response, 404, "job " + job->id + " has no result");
  }
  std::string path = ResultPath(state, *job);
  ServeFileAt(path.substr(0, path.rfind('/')), job->filename, request, response);
}

// Made by `tessera thumbnail` in a child process (a decoder crash on a hostile
// image ends the child, never the server), into thumbs/, then served from there
// with an ETag like any file.
void Thumbnail(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  auto job = FindJob(state, request.captures[0]);
  if (!job.ok()) return ReplyStatus(response, job.status());
  std::string of = request.HasParam("of") ? request.Param("of") : "result";
  if (of != "input" && of != "result") return ReplyError(response, 400, "query parameter of must be input or result");
  std::string source;
  if (of == "input") {
    if (job->input_path.empty()) return ReplyError(response, 404, "job " + job->id + " has no input image");
    source = job->input_path;
  } else {
    if (job->status != store::JobStatus::kSuccess) return ReplyError(response, 404, "job " + job->id + " has no result yet");
    if (!IsImageName(job->filename) || !IsSafeFileName(job->filename)) {
      return ReplyError(response, 404, "job " + job->id + "'s result is not an image");
    }
    source = ResultPath(state, *job);
  }
  std::string dir = state.config.data_dir + "/thumbs";
  std::string name = job->id + "-" + of + ".webp";
  if (::access(source.c_str(), R_OK) != 0) {
    ::unlink((dir + "/" + name).c_str());
    return ReplyError(response, 404, "the " + of + " of job " + job->id + " is no longer stored");
  }
  if (::access((dir + "/" + name).c_str(), F_OK) != 0) {
    std::error_code error;
    std::filesystem::create_directories(dir, error);
    std::string errors = dir + "/." + name + ".stderr";
    SubprocessOptions spawn;
    spawn.argv = {state.self_binary, "thumbnail", "-i", source, "-o", dir + "/" + name, "--max-side",
                  std::to_string(kThumbnailSide)};
    spawn.pipe_stdin = false;
    spawn.pipe_stdout = false;
    spawn.stderr_path = errors;
    spawn.kill_with_parent = true;
    auto child = Subprocess::Start(spawn);
    if (!child.ok()) return ReplyStatus(response, child.status());
    auto status = child->Wait();
    auto said = ReadFileBytes(errors, 4096);
    ::unlink(errors.c_str());
    if (!status.ok() || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
      std::string reason = said.ok() ? std::string(said->begin(), said->end()) : "";
      while (!reason.empty() && (reason.back() == '\n' || reason.back() == '\r')) reason.pop_back();
      LogWarn("thumbnail_failed").Field("job_id", job->id).Field("of", of).Field("error", reason);
      return ReplyError(response, 415, "no thumbnail of job " + job->id + "'s " + of + ": " +
                                           (reason.empty() ? "the thumbnail process failed" : reason));
    }
  }
  ServeFileAt(dir, name, request, response);  // image/webp, ETag, Range
}

void Webhooks(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  auto job = FindJob(state, request.captures[0]);
  if (!job.ok()) return ReplyStatus(response, job.status());
  auto limit = IntegerParam(request, "limit", 100, 1, 1000);
  if (!limit.ok()) return ReplyStatus(response, limit.status());
  auto attempts = state.store->WebhookAttempts(job->id, *limit);
  if (!attempts.ok()) return ReplyStatus(response, attempts.status());
  json list = json::array();
  for (const store::WebhookAttemptRecord& attempt : *attempts) {
    list.push_back(json{{"delivery_id", attempt.delivery_id}, {"url", attempt.url}, {"event", attempt.event},
                        {"attempt", attempt.attempt}, {"delivered", attempt.delivered}, {"final", attempt.final},
                        {"error", attempt.error.empty() ? json(nullptr) : json(attempt.error)},
                        {"at_ms", attempt.at_ms}});
  }
  ReplyJson(response, 200, json{{"job_id", job->id}, {"attempts", list}}.dump());
}

void ListBatches(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  auto limit = IntegerParam(request, "limit", 20, 1, 100);
  if (!limit.ok()) return ReplyStatus(response, limit.status());
  int64_t before = 0;
  if (request.HasParam("cursor")) {
    auto cursor = IntegerParam(request, "cursor", 0, 1, INT64_MAX);
    if (!cursor.ok()) return ReplyError(response, 400, "query parameter cursor must be a next_cursor from an earlier answer");
    before = *cursor;
  }
  auto batches = state.batch_store->ListBatches(request.Param("game_id"), before, *limit + 1);
  if (!batches.ok()) return ReplyStatus(response, batches.status());
  bool more = static_cast<int64_t>(batches->size()) > *limit;
  if (more) batches->resize(static_cast<size_t>(*limit));
  json list = json::array();
  for (const store::Batch& batch : *batches) {
    auto rows = state.batch_store->ListBatchImages(batch.id);
    if (!rows.ok()) return ReplyStatus(response, rows.status());
    list.push_back(json::parse(BatchStatusJson(batch, *rows)));
  }
  ReplyJson(response, 200,
            json{{"batches", list}, {"next_cursor", more ? json(std::to_string(batches->back().seq)) : json(nullptr)}}
                .dump());
}

}  // namespace

void RegisterCatalogRoutes(JobServer::State& state) {
  state.router.Add("GET", "/models", [&state](const HttpRequest& q, HttpResponse& r) { Models(state, q, r); });
  state.router.Add("GET", "/jobs/counts", [&state](const HttpRequest& q, HttpResponse& r) { Counts(state, q, r); });
  state.router.Add("POST", "/jobs/{}/retry", [&state](const HttpRequest& q, HttpResponse& r) { Retry(state, q, r); })
      .submits_work = true;
  state.router.Add("GET", "/jobs/{}/log", [&state](const HttpRequest& q, HttpResponse& r) { Log(state, q, r); });
  state.router.Add("GET", "/jobs/{}/input", [&state](const HttpRequest& q, HttpResponse& r) { Input(state, q, r); });
  state.router.Add("GET", "/jobs/{}/result", [&state](const HttpRequest& q, HttpResponse& r) { Result(state, q, r); });
  state.router.Add("GET", "/jobs/{}/webhooks", [&state](const HttpRequest& q, HttpResponse& r) { Webhooks(state, q, r); });
  state.router.Add("GET", "/jobs/{}/thumbnail", [&state](const HttpRequest& q, HttpResponse& r) { Thumbnail(state, q, r); });
  state.router.Add("GET", "/images/batches", [&state](const HttpRequest& q, HttpResponse& r) { ListBatches(state, q, r); });
}

}  // namespace tessera::server
