// POST /generate, GET /status/{id}, GET /jobs, DELETE /jobs, GET /jobs/lookup, POST /webhook
// (seed 001, section 6).
#include <nlohmann/json.hpp>

#include "jobs/job_state.h"
#include "jobs/job_submission.h"
#include "jobs/video_postprocess.h"
#include "server/query_params.h"
#include "server/server_state.h"
#include "util/log.h"

namespace tessera::server {
namespace {

using nlohmann::json;
using store::Job;
using store::JobKind;
using store::JobStatus;

constexpr size_t kMaxPromptBytes = 20000;

bool IsBlank(const std::string& text) {
  return text.find_first_not_of(" \t\r\n") == std::string::npos;
}

bool IsHttpUrl(const std::string& url) {
  return (url.rfind("http://", 0) == 0 && url.size() > 7) || (url.rfind("https://", 0) == 0 && url.size() > 8);
}

void Generate(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) return ReplyError(response, 400, "the body must be a JSON object");
  if (!body.contains("prompt") || !body["prompt"].is_string() || IsBlank(body["prompt"].get<std::string>())) {
    return ReplyError(response, 400, "prompt is required and must be a non-empty string");
  }
  std::string prompt = body["prompt"].get<std::string>();
  if (prompt.size() > kMaxPromptBytes) {
    return ReplyError(response, 400, "prompt is longer than " + std::to_string(kMaxPromptBytes) + " bytes");
  }
  if (prompt.find('\0') != std::string::npos) return ReplyError(response, 400, "prompt contains a NUL character");
  if (!body.contains("size") || !body["size"].is_string()) {
    return ReplyError(response, 400, "size is required: \"1280x720\" or \"720x1280\"");
  }
  auto size = jobs::ParseApiSize(body["size"].get<std::string>());
  if (!size.ok()) return ReplyError(response, 400, size.status().message());
  std::string resize_mode = state.config.resize_mode;
  if (body.contains("resize_mode")) {
    if (!body["resize_mode"].is_string()) return ReplyError(response, 400, "resize_mode must be \"pad\" or \"scale\"");
    resize_mode = body["resize_mode"].get<std::string>();
    if (auto mode = jobs::ParseResizeMode(resize_mode); !mode.ok()) return ReplyError(response, 400, mode.status().message());
  }
  std::string filename;
  if (body.contains("filename") && !body["filename"].is_null()) {
    if (!body["filename"].is_string()) return ReplyError(response, 400, "filename must be a string");
    filename = body["filename"].get<std::string>();
  }
  std::string webhook;
  if (body.contains("webhook") && !body["webhook"].is_null()) {
    if (!body["webhook"].is_string() || !IsHttpUrl(body["webhook"].get<std::string>())) {
      return ReplyError(response, 400, "webhook must be an http:// or https:// URL");
    }
    webhook = body["webhook"].get<std::string>();
  }

  jobs::GenerateRequest wanted{prompt, *size, resize_mode, filename, webhook, request.remote_addr};
  auto view = jobs::SubmitGenerate(*state.scheduler, *state.store, state.config.ResultsDir(), wanted);
  if (!view.ok()) return ReplyStatus(response, view.status());
  LogInfo("job_submitted").Field("job_id", view->job.id).Field("kind", "generate").Field("lane", view->job.lane)
      .Field("client", request.remote_addr);

  json answer = json::parse(JobViewJson(state, *view));
  answer["gpu_assigned"] = view->job.gpu_id >= 0 ? json(view->job.gpu_id) : json(nullptr);
  answer["status_url"] = "/status/" + view->job.id;
  response.SetHeader("Location", "/status/" + view->job.id);
  ReplyJson(response, 202, answer.dump());
}

void GetStatus(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  std::string id = request.captures[0];
  auto view = state.scheduler->Describe(id);
  if (!view.ok()) {
    if (view.status().code() == StatusCode::kNotFound) return ReplyError(response, 404, "no job " + id);
    return ReplyStatus(response, view.status());
  }
  ReplyJson(response, 200, JobViewJson(state, *view));
}

// A queued or running job, answered from the scheduler's memory on the event
// loop; false for the others (GetStatus reads the store on a handler thread).
bool GetHeldStatus(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  auto view = state.scheduler->DescribeHeld(request.captures[0]);
  if (!view) return false;
  ReplyJson(response, 200, JobViewJson(state, *view));
  return true;
}

void RemoveJobFiles(JobServer::State& state, const Job& job, json& files_deleted) {
  if (!job.filename.empty() && RemoveResultFile(state, job.filename)) files_deleted.push_back(job.filename);
  if (!job.input_path.empty()) ::unlink(job.input_path.c_str());
  RemoveThumbnails(state, job.id);
}

// DELETE /jobs?ids=a,b | status=queued|running|success|error|canceled | all=true
// [&delete_files=true]. Queued and running jobs are canceled (their rows stay, so
// whoever polls them sees "canceled"); finished ones are deleted, with their
// files when asked.
void DeleteJobs(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  store::JobFilter filter;
  auto all_param = BoolParam(request, "all", false);
  if (!all_param.ok()) return ReplyStatus(response, all_param.status());
  bool all = *all_param;
  std::string ids = request.Param("ids");
  std::string status = request.Param("status");
  int selectors = (all ? 1 : 0) + (ids.empty() ? 0 : 1) + (status.empty() ? 0 : 1);
  if (selectors == 0) return ReplyError(response, 400, "say which jobs: ids=..., status=... or all=true");
  if (selectors > 1) return ReplyError(response, 400, "use one of ids, status and all, not several");
  std::string delete_files_param = request.Param("delete_files");
  if (!delete_files_param.empty() && delete_files_param != "true" && delete_files_param != "false") {
    return ReplyError(response, 400, "delete_files must be true or false");
  }
  bool delete_files = delete_files_param == "true";
  json not_found = json::array();
  if (!ids.empty()) {
    filter.ids = SplitCsv(ids);
    if (filter.ids.empty()) return ReplyError(response, 400, "ids is empty");
  }
  if (!status.empty()) {
    for (const std::string& name : SplitCsv(status)) {
      auto parsed = store::ParseJobStatus(name);
      if (!parsed) return ReplyError(response, 400, "unknown status " + name);
      filter.statuses.push_back(*parsed);
    }
  }
  auto selected = state.store->List(filter);
  if (!selected.ok()) return ReplyStatus(response, selected.status());
  if (!ids.empty()) {
    std::set<std::string> found;
    for (const Job& job : *selected) found.insert(job.id);
    for (const std::string& id : filter.ids) {
      if (!found.count(id)) not_found.push_back(id);
    }
  }
  json canceled = json::array(), deleted = json::array(), files_deleted = json::array();
  std::vector<std::string> to_delete;
  std::vector<std::string> live;   // on lanes (queued or running): the scheduler cancels them
  std::vector<Job> live_videos;    // no lane holds a video job: it is canceled with its segments
  for (const Job& job : *selected) {
    if (!store::IsFinished(job.status)) {
      if (job.kind == JobKind::kVideo) {
        live_videos.push_back(job);
      } else {
        live.push_back(job.id);
      }
      continue;
    }
    if (delete_files) RemoveJobFiles(state, job, files_deleted);
    to_delete.push_back(job.id);
  }
  for (const Job& video : live_videos) {
    auto stopped = state.videos->Cancel(video.id);
    if (!stopped.ok()) return ReplyStatus(response, stopped.status());
    canceled.push_back(video.id);
    if (delete_files) RemoveJobFiles(state, *stopped, files_deleted);
  }
  if (!live.empty()) {
    auto stopped = state.scheduler->CancelMany(live);
    if (!stopped.ok()) return ReplyStatus(response, stopped.status());
    for (const Job& job : *stopped) {
      canceled.push_back(job.id);
      if (delete_files) RemoveJobFiles(state, job, files_deleted);
    }
  }
  if (!to_delete.empty()) {
    auto count = state.store->Delete(to_delete);
    if (!count.ok()) return ReplyStatus(response, count.status());
    for (const auto& id : to_delete) {
      deleted.push_back(id);
      RemoveThumbnails(state, id);  // derived from the job's files: they go with its row
    }
  }
  LogInfo("jobs_deleted").Field("canceled", canceled.size()).Field("deleted", deleted.size())
      .Field("files_deleted", files_deleted.size()).Field("client", request.remote_addr);
  ReplyJson(response, 200,
            json{{"canceled", canceled}, {"deleted", deleted}, {"files_deleted", files_deleted}, {"not_found", not_found}}
                .dump());
}

// ?limit= (1-1000, default 100) and ?cursor= (a next_cursor from an earlier page).
Status ReadPaging(const HttpRequest& request, store::JobFilter& filter) {
  auto limit = IntegerParam(request, "limit", 100, 1, 1000);
  if (!limit.ok()) return limit.status();
  filter.limit = *limit + 1;  // one more tells whether another page follows
  if (request.HasParam("cursor")) {
    auto cursor = IntegerParam(request, "cursor", 0, 1, INT64_MAX);
    if (!cursor.ok()) return InvalidError("query parameter cursor must be a next_cursor from an earlier answer");
    filter.after_seq = *cursor;
  }
  return Status::Ok();
}

// {"jobs": [...], "next_cursor": "<seq>" | null}, newest first.
void ReplyJobPage(JobServer::State& state, std::vector<Job> jobs, int64_t limit, HttpResponse& response) {
  bool more = static_cast<int64_t>(jobs.size()) > limit;
  if (more) jobs.resize(static_cast<size_t>(limit));
  json list = json::array();
  for (const Job& job : jobs) list.push_back(json::parse(JobViewJson(state, state.scheduler->DescribeJob(job))));
  ReplyJson(response, 200,
            json{{"jobs", list}, {"next_cursor", more ? json(std::to_string(jobs.back().seq)) : json(nullptr)}}.dump());
}

// GET /jobs/lookup?prompt=...[&all=true]: the latest job with exactly this prompt,
// or all of them (newest first, paged: ?limit= 100 by default, ?cursor=).
void Lookup(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  if (!request.HasParam("prompt") || request.Param("prompt").empty()) {
    return ReplyError(response, 400, "prompt is required");
  }
  auto all = BoolParam(request, "all", false);
  if (!all.ok()) return ReplyStatus(response, all.status());
  store::JobFilter filter;
  filter.prompt = request.Param("prompt");
  filter.newest_first = true;
  filter.limit = 1;
  if (*all) {
    if (Status paging = ReadPaging(request, filter); !paging.ok()) return ReplyStatus(response, paging);
  }
  auto jobs = state.store->List(filter);
  if (!jobs.ok()) return ReplyStatus(response, jobs.status());
  if (jobs->empty() && !filter.after_seq) return ReplyError(response, 404, "no job has this prompt");
  if (!*all) return ReplyJson(response, 200, JobViewJson(state, state.scheduler->DescribeJob(jobs->front())));
  ReplyJobPage(state, std::move(*jobs), filter.limit - 1, response);
}

// GET /jobs[?status=a,b][&kind=generate|upscale][&q=text][&order=newest|oldest]
// [&limit=][&cursor=]: every job, newest first (oldest first: the FIFO), a page
// at a time; q keeps those whose id, prompt or file name contains the text.
void ListJobs(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  store::JobFilter filter;
  std::string order = request.Param("order");
  if (!order.empty() && order != "newest" && order != "oldest") {
    return ReplyError(response, 400, "query parameter order must be newest or oldest");
  }
  filter.newest_first = order != "oldest";
  if (std::string text = request.Param("q"); !text.empty()) {
    if (text.size() > 200) return ReplyError(response, 400, "query parameter q is longer than 200 bytes");
    filter.search = text;
  }
  for (const std::string& name : SplitCsv(request.Param("status"))) {
    auto parsed = store::ParseJobStatus(name);
    if (!parsed) {
      return ReplyError(response, 400, "query parameter status: unknown status " + name +
                                           " (queued, running, success, error, canceled)");
    }
    filter.statuses.push_back(*parsed);
  }
  if (std::string kind = request.Param("kind"); !kind.empty()) {
    std::optional<JobKind> parsed = store::ParseJobKind(kind);
    if (!parsed) return ReplyError(response, 400, "query parameter kind must be generate, upscale, video or video_segment");
    filter.kind = *parsed;
  }
  if (Status paging = ReadPaging(request, filter); !paging.ok()) return ReplyStatus(response, paging);
  auto jobs = state.store->List(filter);
  if (!jobs.ok()) return ReplyStatus(response, jobs.status());
  ReplyJobPage(state, std::move(*jobs), filter.limit - 1, response);
}

// POST /webhook {"url": "...", "job_id": optional}: call `url` when jobs finish.
void RegisterWebhook(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) return ReplyError(response, 400, "the body must be a JSON object");
  if (!body.contains("url") || !body["url"].is_string() || !IsHttpUrl(body["url"].get<std::string>())) {
    return ReplyError(response, 400, "url must be an http:// or https:// URL");
  }
  store::WebhookRegistration registration;
  registration.url = body["url"].get<std::string>();
  if (body.contains("job_id") && !body["job_id"].is_null()) {
    if (!body["job_id"].is_string()) return ReplyError(response, 400, "job_id must be a string");
    registration.job_id = body["job_id"].get<std::string>();
    if (auto job = state.store->Get(registration.job_id); !job.ok()) {
      return ReplyError(response, 404, "no job " + registration.job_id);
    }
  }
  registration.created_ms = jobs::NowMs();
  auto id = state.store->AddWebhook(registration);
  if (!id.ok()) return ReplyStatus(response, id.status());
  ReplyJson(response, 201,
            json{{"id", *id}, {"url", registration.url},
                 {"job_id", registration.job_id.empty() ? json(nullptr) : json(registration.job_id)}}
                .dump());
}

}  // namespace

void RegisterJobRoutes(JobServer::State& state) {
  state.router.Add("POST", "/generate", [&state](const HttpRequest& q, HttpResponse& r) { Generate(state, q, r); })
      .submits_work = true;
  // On a handler thread, not the event loop: the store serialises its reads, and
  // a read waiting there would stall every connection of the loop (measured:
  // p99 2 s at 1000 connections against 0.1 s).
  state.router.Add("GET", "/status/{}", [&state](const HttpRequest& q, HttpResponse& r) { GetStatus(state, q, r); })
      .from_memory = [&state](const HttpRequest& q, HttpResponse& r) { return GetHeldStatus(state, q, r); };
  state.router.Add("DELETE", "/jobs", [&state](const HttpRequest& q, HttpResponse& r) { DeleteJobs(state, q, r); });
  state.router.Add("GET", "/jobs/lookup", [&state](const HttpRequest& q, HttpResponse& r) { Lookup(state, q, r); });
  state.router.Add("GET", "/jobs", [&state](const HttpRequest& q, HttpResponse& r) { ListJobs(state, q, r); });
  state.router.Add("POST", "/webhook", [&state](const HttpRequest& q, HttpResponse& r) { RegisterWebhook(state, q, r); });
}

}  // namespace tessera::server
