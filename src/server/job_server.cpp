#include "server/job_server.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "jobs/command_runner.h"
#include "jobs/generate_executor.h"
#include "jobs/job_state.h"
#include "jobs/upscale_executor.h"
#include "server/server_state.h"
#include "store/sqlite_job_store.h"
#include "util/log.h"

namespace tessera::server {
namespace {

using nlohmann::json;

bool IsPublicPath(const std::string& path) { return path == "/health"; }
bool IsBatchUpload(const std::string& path) {
  return path.rfind("/images/games/", 0) == 0 && path.size() > 13 &&
         path.compare(path.size() - 13, 13, "/batch-upload") == 0;
}
bool IsUnlimitedPath(const std::string& path) { return path == "/health" || path == "/ready" || path == "/metrics"; }

// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
bool SameSecret(const std::string& a, const std::string& b) {
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) difference |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
  return difference == 0 && !b.empty();
}

std::string ClientKey(const httplib::Request& request) { return request.remote_addr; }

void InstallGuards(JobServer::State& state) {
  state.http.set_pre_routing_handler([&state](const httplib::Request& request, httplib::Response& response) {
    const ServerConfig& config = state.config;
    if (!config.token.empty() && !IsPublicPath(request.path)) {
      std::string header = request.get_header_value("Authorization");
      const std::string prefix = "Bearer ";
      if (header.rfind(prefix, 0) != 0 || !SameSecret(header.substr(prefix.size()), config.token)) {
        response.set_header("WWW-Authenticate", "Bearer realm=\"tessera\"");
        ReplyError(response, 401, "a valid bearer token is required (Authorization: Bearer <token>)");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    if (!IsBatchUpload(request.path) && request.has_header("Content-Length")) {
      double megabytes = std::atof(request.get_header_value("Content-Length").c_str()) / (1024.0 * 1024.0);
      if (megabytes > config.max_body_mb) {
        ReplyError(response, 413, "the body is larger than max_body_mb (" + std::to_string(config.max_body_mb) + " MiB)");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    if (state.limiter && !IsUnlimitedPath(request.path)) {
      auto decision = state.limiter->Take(ClientKey(request), RateLimiter::Clock::now());
      if (!decision.allowed) {
        response.set_header("Retry-After", std::to_string(decision.retry_after_seconds));
        ReplyError(response, 429, "too many requests; retry in " + std::to_string(decision.retry_after_seconds) + " s");
        return httplib::Server::HandlerResponse::Handled;
      }
      response.set_header("X-RateLimit-Remaining", std::to_string(decision.remaining));
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  state.http.set_logger([&state](const httplib::Request& request, const httplib::Response& response) {
    state.metrics.CountRequest(request.method, response.status);
    if (request.path == "/metrics" || request.path == "/health") return;
    LogInfo("http_request").Field("method", request.method).Field("path", request.path)
        .Field("status", response.status).Field("client", request.remote_addr);
  });
  state.http.set_exception_handler([](const httplib::Request& request, httplib::Response& response, std::exception_ptr error) {
    std::string what = "unknown";
    try {
      if (error) std::rethrow_exception(error);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    LogError("http_handler_failed").Field("path", request.path).Field("error", what);
    ReplyError(response, 500, "internal error: " + what);
  });
  state.http.set_error_handler([](const httplib::Request&, httplib::Response& response) {
    if (!response.body.empty()) return;
    if (response.status == 404) return ReplyError(response, 404, "no such route");
    if (response.status == 413) return ReplyError(response, 413, "the request body is too large");
    ReplyError(response, response.status, "request failed");
  });
}

// Deletes finished jobs older than RETENTION_DAYS with their files and logs.
void PurgeExpired(JobServer::State& state) {
  if (state.config.retention_days <= 0) return;
  store::JobFilter filter;
  filter.finished_before_ms = jobs::NowMs() - static_cast<int64_t>(state.config.retention_days * 86400.0 * 1000.0);
  auto expired = state.store->List(filter);
  if (!expired.ok()) {
    LogWarn("retention_failed").Field("error", expired.status().ToString());
    return;
  }
  std::vector<std::string> ids;
  for (const store::Job& job : *expired) {
    if (!job.filename.empty()) RemoveResultFile(state, job.filename);
    if (!job.input_path.empty()) ::unlink(job.input_path.c_str());
    ::unlink((state.config.LogsDir() + "/" + job.id + ".log").c_str());
    ids.push_back(job.id);
  }
  if (ids.empty()) return;
  auto deleted = state.store->Delete(ids);
  LogInfo("retention_purged").Field("jobs", ids.size()).Field("ok", deleted.ok());
}

Status MakeDirectory(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(path, error);
  if (error) return IoError("cannot create " + path + ": " + error.message());
  return Status::Ok();
}

}  // namespace

JobServer::JobServer(std::unique_ptr<State> state) : state_(std::move(state)) {}

JobServer::~JobServer() { Stop(); }

int JobServer::port() const { return state_->port; }

Result<std::unique_ptr<JobServer>> JobServer::Start(const ServerConfig& config, const std::string& self_binary) {
  auto state = std::make_unique<State>();
  state->config = config;
  state->self_binary = config.worker_binary.empty() ? self_binary : config.worker_binary;
  for (const std::string& dir : {config.data_dir, config.ResultsDir(), config.LogsDir(), config.UploadsDir()}) {
    if (Status made = MakeDirectory(dir); !made.ok()) return made;
  }

  auto opened = store::SqliteJobStore::Open(config.DbPath());
  if (!opened.ok()) return opened.status();
  state->batch_store = opened->get();
  state->store = std::move(opened).value();

  jobs::LaneSources sources;
  sources.gpu_ids = config.gpu_ids;
  auto environment = ProcessEnvironment();
  if (auto it = environment.find("NVIDIA_VISIBLE_DEVICES"); it != environment.end()) {
    sources.nvidia_visible_devices = it->second;
  }
  if (!sources.gpu_ids && !sources.nvidia_visible_devices) sources.nvidia_smi_list = jobs::RunNvidiaSmiList();
  sources.cpu_lanes = config.cpu_lanes;
  auto lanes = jobs::DiscoverLanes(sources);
  if (!lanes.ok()) return lanes.status();
  state->lanes = *lanes;

  std::string command = config.generate_command.empty() ? std::string(jobs::kDefaultGeneratorTemplate)
                                                         : config.generate_command;
  auto argv = jobs::SplitCommandTemplate(command);
  if (!argv.ok()) return InvalidError("generate_command: " + argv.status().message());
  state->generate_argv = *argv;

  jobs::GenerateExecutorOptions generate;
  generate.argv_template = state->generate_argv;
  generate.working_directory = config.generate_cwd;
  generate.ckpt_dir = config.wan_ckpt_dir;
  generate.results_dir = config.ResultsDir();
  generate.logs_dir = config.LogsDir();
  generate.timeout = std::chrono::milliseconds(static_cast<int64_t>(config.generate_timeout_s * 1000));

  jobs::UpscaleExecutorOptions upscale;
  upscale.worker_binary = state->self_binary;
  // The workers log their model cache after each request; /metrics reads it back.
  upscale.worker_args.push_back("--stats");
  if (!config.model_dir.empty()) {
    upscale.worker_args.push_back("--model-dir");
    upscale.worker_args.push_back(config.model_dir);
  }
  if (config.worker_threads > 0) {
    upscale.worker_args.push_back("--threads");
    upscale.worker_args.push_back(std::to_string(config.worker_threads));
  }
  upscale.results_dir = config.ResultsDir();
  upscale.logs_dir = config.LogsDir();
  upscale.job_timeout = std::chrono::milliseconds(static_cast<int64_t>(config.upscale_timeout_s * 1000));

  std::map<store::JobKind, jobs::ExecutorFactory> factories;
  factories[store::JobKind::kGenerate] = [generate](const jobs::LaneSpec&) {
    return std::make_unique<jobs::GenerateExecutor>(generate);
  };
  factories[store::JobKind::kUpscale] = [upscale](const jobs::LaneSpec& lane) {
    return std::make_unique<jobs::UpscaleExecutor>(upscale, lane);
  };
  jobs::SchedulerOptions scheduling;
  scheduling.max_attempts = config.max_attempts;
  scheduling.restart_policy = config.restart_policy == "fail" ? jobs::RestartPolicy::kFail : jobs::RestartPolicy::kRequeue;
  scheduling.default_generate_seconds = config.default_generate_seconds;
  scheduling.default_upscale_seconds = config.default_upscale_seconds;
  scheduling.batch_parallel_limit = config.batch_parallel_workers;
  state->scheduler = std::make_unique<jobs::Scheduler>(*state->store, state->lanes, std::move(factories), scheduling);

  WebhookOptions webhook_options;
  webhook_options.secret = config.webhook_secret;
  webhook_options.max_attempts = config.webhook_max_attempts;
  webhook_options.backoff_base = std::chrono::milliseconds(static_cast<int64_t>(config.webhook_backoff_s * 1000));
  state->webhooks = std::make_unique<WebhookSender>(webhook_options);

  if (config.rate_limit_per_minute > 0) {
    RateLimiterOptions limits;
    limits.capacity = config.rate_limit_burst;
    limits.refill_per_second = config.rate_limit_per_minute / 60.0;
    state->limiter = std::make_unique<RateLimiter>(limits);
  }

  // Every job change: to /events, to waiting requests, to metrics and webhooks.
  State* raw = state.get();
  state->scheduler->AddListener([raw](const jobs::JobView& view) {
    raw->events.Publish(JobViewJson(*raw, view));
    const store::Job& job = view.job;
    if (!store::IsFinished(job.status)) return;
    raw->waiters.Finished(job.id);
    if (job.started_ms > 0) {
      raw->metrics.ObserveJobDuration(std::string(store::JobKindName(job.kind)),
                                      std::string(store::JobStatusName(job.status)),
                                      (job.finished_ms - job.started_ms) / 1000.0);
    }
    std::vector<std::string> targets;
    if (!job.webhook_url.empty()) targets.push_back(job.webhook_url);
    auto registered = raw->store->WebhooksFor(job.id);
    if (registered.ok()) {
      for (const auto& r : *registered) targets.push_back(r.url);
    }
    if (targets.empty()) return;
    std::string body = JobViewJson(*raw, view);
    for (const std::string& url : targets) {
      Status queued = raw->webhooks->Enqueue(url, body, "job." + std::string(store::JobStatusName(job.status)));
      if (!queued.ok()) LogWarn("webhook_not_queued").Field("job_id", job.id).Field("url", url).Field("error", queued.ToString());
    }
  });

  jobs::BatchOptions batch_options;
  batch_options.max_retries = config.batch_max_retries;
  batch_options.retry_delay = std::chrono::milliseconds(static_cast<int64_t>(config.batch_retry_delay_s * 1000));
  state->batches = std::make_unique<jobs::BatchRunner>(
      *state->store, *state->batch_store, *state->scheduler, batch_options, [raw](const std::string& batch_id) {
        auto batch = raw->batch_store->GetBatch(batch_id);
        auto rows = raw->batch_store->ListBatchImages(batch_id);
        if (!batch.ok() || !rows.ok() || batch->webhook_url.empty()) return;
        Status queued = raw->webhooks->Enqueue(batch->webhook_url, BatchStatusJson(*batch, *rows), "batch.settled");
        if (!queued.ok()) LogWarn("webhook_not_queued").Field("batch_id", batch_id).Field("error", queued.ToString());
      });
  state->scheduler->AddListener([raw](const jobs::JobView& view) { raw->batches->OnJobChanged(view); });

  if (Status started = state->scheduler->Start(); !started.ok()) return started;
  if (Status resumed = state->batches->Start(); !resumed.ok()) {
    state->scheduler->Stop();
    return resumed;
  }

  state->http.new_task_queue = [threads = config.http_threads] { return new httplib::ThreadPool(threads); };
  // httplib has one body limit for every route: the batch upload's (streamed to
  // disk). The other routes, which read bodies into memory, are held to
  // max_body_mb by the guard below.
  state->http.set_payload_max_length(
      static_cast<size_t>(std::max(config.max_body_mb, config.max_upload_mb) * 1024 * 1024));
  // Answers are written as headers then body: without TCP_NODELAY each one waits
  // ~40 ms for the client's delayed ACK (measured: 276 -> 10 000 status req/s).
  state->http.set_tcp_nodelay(true);
  state->http.set_read_timeout(30, 0);
  state->http.set_write_timeout(30, 0);
  InstallGuards(*state);
  RegisterJobRoutes(*state);
  RegisterFileRoutes(*state);
  RegisterUpscaleRoutes(*state);
  RegisterOpsRoutes(*state);
  RegisterBatchRoutes(*state);

  if (config.port == 0) {
    state->port = state->http.bind_to_any_port(config.host);
  } else {
    state->port = state->http.bind_to_port(config.host, config.port) ? config.port : -1;
  }
  if (state->port <= 0) {
    state->scheduler->Stop();
    return IoError("cannot listen on " + config.host + ":" + std::to_string(config.port) +
                   " (in use, or not an address of this machine)");
  }

  // Expired jobs go before the server answers anyone, then once an hour.
  PurgeExpired(*raw);
  state->retention_thread = std::thread([raw] {
    std::unique_lock lock(raw->stop_mutex);
    while (!raw->stop_cv.wait_for(lock, std::chrono::hours(1), [raw] { return raw->stopping; })) {
      lock.unlock();
      PurgeExpired(*raw);
      lock.lock();
    }
  });
  LogInfo("server_listening").Field("host", config.host).Field("port", state->port)
      .Field("lanes", state->lanes.size()).Field("db", config.DbPath()).Field("results", config.ResultsDir());
  return std::unique_ptr<JobServer>(new JobServer(std::move(state)));
}

Status JobServer::Serve() {
  if (!state_->http.listen_after_bind()) {
    std::lock_guard lock(state_->stop_mutex);
    if (!state_->stopping) return IoError("the HTTP listener stopped unexpectedly");
  }
  return Status::Ok();
}

void JobServer::Stop() {
  {
    std::lock_guard lock(state_->stop_mutex);
    if (state_->stopping) return;
    state_->stopping = true;
  }
  state_->stop_cv.notify_all();
  LogInfo("server_stopping");
  state_->events.Close();
  state_->http.stop();
  state_->batches->Stop();
  state_->scheduler->Stop();
  if (state_->retention_thread.joinable()) state_->retention_thread.join();
  state_->webhooks->Flush(std::chrono::seconds(5));
  LogInfo("server_stopped");
}

}  // namespace tessera::server
