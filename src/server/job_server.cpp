#include "server/job_server.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine/backend_registry.h"
#include "jobs/command_runner.h"
#include "jobs/generate_executor.h"
#include "jobs/job_state.h"
#include "jobs/upscale_executor.h"
#include "jobs/video_segment_executor.h"
#include "server/server_state.h"
#include "server/startup_cleanup.h"
#include "store/store_factory.h"
#include "util/log.h"

namespace tessera::server {
namespace {

using State = JobServer::State;

// Deletes finished jobs older than RETENTION_DAYS with their files and logs.
void PurgeExpired(State& state) {
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
    RemoveThumbnails(state, job.id);
    ids.push_back(job.id);
  }
  if (ids.empty()) return;
  auto deleted = state.store->Delete(ids);
  LogInfo("retention_purged").Field("jobs", ids.size()).Field("ok", deleted.ok());
}

std::string HostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "node";
  std::string cleaned;
  for (char c : std::string(name)) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    cleaned += ok ? c : '_';
  }
  return cleaned;
}

Status MakeFolders(const ServerConfig& config) {
  for (const std::string& dir : {config.data_dir, config.ResultsDir(), config.LogsDir(), config.UploadsDir(), config.BatchRoot()}) {
    std::error_code error;
    std::filesystem::create_directories(dir, error);
    if (error) return IoError("cannot create " + dir + ": " + error.message());
  }
  return Status::Ok();
}

Status OpenStore(State& state) {
  auto opened = store::OpenStore(state.config.store, state.config.DbPath());
  if (!opened.ok()) return opened.status();
  state.batch_store = opened->get();
  state.cluster_store = dynamic_cast<store::ClusterStore*>(opened->get());
  state.store = std::move(opened).value();
  return Status::Ok();
}

// The lanes' names in the cluster: "<node>/<lane>".
std::vector<std::string> ClusterLaneNames(const State& state) {
  std::vector<std::string> names;
  for (size_t i = 0; i < state.lanes.size(); ++i) names.push_back(state.scheduler->LaneName(i));
  return names;
}

std::string AdvertiseUrl(const State& state) {
  const ServerConfig& config = state.config;
  if (!config.advertise_url.empty()) return config.advertise_url;
  std::string host = config.host;
  if (host == "0.0.0.0" || host == "::" || host.empty()) host = HostName();
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "http://" + host + ":" + std::to_string(state.port > 0 ? state.port : config.port);
}

// Cluster mode: this node registered before its lanes claim anything, so that
// the reaper knows whom to ask about every claimed job.
Status JoinCluster(State& state) {
  if (!state.cluster_store) return Status::Ok();
  const ServerConfig& config = state.config;
  jobs::ClusterMemberOptions options;
  options.node_id = config.node_id;
  options.lanes = ClusterLaneNames(state);
  options.lease = std::chrono::milliseconds(static_cast<int64_t>(config.node_lease_s * 1000));
  options.renew_every = options.lease / 3;
  options.check_every = std::min<std::chrono::milliseconds>(std::chrono::milliseconds(2000), options.lease / 4);
  options.restart_policy =
      config.restart_policy == "fail" ? jobs::RestartPolicy::kFail : jobs::RestartPolicy::kRequeue;
  state.cluster = std::make_unique<jobs::ClusterMember>(*state.cluster_store, *state.scheduler, options);
  return state.cluster->Register(AdvertiseUrl(state));
}

Status FindLanes(State& state) {
  const ServerConfig& config = state.config;
  jobs::LaneSources sources;
  sources.gpu_ids = config.gpu_ids;
  auto environment = ProcessEnvironment();
  if (auto it = environment.find("NVIDIA_VISIBLE_DEVICES"); it != environment.end()) {
    sources.nvidia_visible_devices = it->second;
  }
  if (!sources.gpu_ids && !sources.nvidia_visible_devices) sources.nvidia_smi_list = jobs::RunNvidiaSmiList();
  sources.cpu_lanes = config.cpu_lanes;
  for (const engine::GpuEntry& gpu : engine::NumberedGpus(engine::MachineGpus())) {
    sources.numbered_gpus.push_back(gpu.device.Name());
  }
  auto lanes = jobs::DiscoverLanes(sources);
  if (!lanes.ok()) return lanes.status();
  state.lanes = *lanes;
  return Status::Ok();
}

Result<std::map<store::JobKind, jobs::ExecutorFactory>> MakeExecutorFactories(State& state) {
  const ServerConfig& config = state.config;
  std::string command = config.generate_command.empty() ? std::string(jobs::kDefaultGeneratorTemplate)
                                                         : config.generate_command;
  auto argv = jobs::SplitCommandTemplate(command);
  if (!argv.ok()) return InvalidError("generate_command: " + argv.status().message());
  state.generate_argv = *argv;

  jobs::GenerateExecutorOptions generate;
  generate.argv_template = state.generate_argv;
  generate.working_directory = config.generate_cwd;
  generate.ckpt_dir = config.wan_ckpt_dir;
  generate.results_dir = config.ResultsDir();
  generate.logs_dir = config.LogsDir();
  generate.timeout = std::chrono::milliseconds(static_cast<int64_t>(config.generate_timeout_s * 1000));

  jobs::UpscaleExecutorOptions upscale;
  upscale.worker_binary = state.self_binary;
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
  jobs::VideoSegmentExecutorOptions segments;
  segments.tessera_binary = state.self_binary;
  // The same model folder and threads as the upscale workers (worker_args less --stats).
  segments.model_args.assign(upscale.worker_args.begin() + 1, upscale.worker_args.end());
  segments.logs_dir = config.LogsDir();
  segments.timeout = std::chrono::milliseconds(static_cast<int64_t>(config.video_segment_timeout_s * 1000));
  factories[store::JobKind::kVideoSegment] = [segments](const jobs::LaneSpec&) {
    return std::make_unique<jobs::VideoSegmentExecutor>(segments);
  };
  return factories;
}

void MakeScheduler(State& state, std::map<store::JobKind, jobs::ExecutorFactory> factories) {
  const ServerConfig& config = state.config;
  jobs::SchedulerOptions scheduling;
  scheduling.max_attempts = config.max_attempts;
  scheduling.restart_policy = config.restart_policy == "fail" ? jobs::RestartPolicy::kFail : jobs::RestartPolicy::kRequeue;
  scheduling.default_generate_seconds = config.default_generate_seconds;
  scheduling.default_upscale_seconds = config.default_upscale_seconds;
  scheduling.batch_parallel_limit = config.batch_parallel_workers;
  scheduling.cluster = state.cluster_store;
  scheduling.node_id = config.node_id;
  state.scheduler = std::make_unique<jobs::Scheduler>(*state.store, state.lanes, std::move(factories), scheduling);
}

void MakeServices(State& state) {
  const ServerConfig& config = state.config;
  WebhookOptions webhook_options;
  webhook_options.secret = config.webhook_secret;
  webhook_options.max_attempts = config.webhook_max_attempts;
  webhook_options.backoff_base = std::chrono::milliseconds(static_cast<int64_t>(config.webhook_backoff_s * 1000));
  // Every attempt at a job's webhook is kept with the job (GET /jobs/{id}/webhooks),
  // and the job is published again: its record changed, and a page showing it
  // learns so without polling. Not in cluster mode, where every event is the
  // database's (an attempt does not write the job's row, so it makes none): a
  // page there sees the attempts on the job's next event or when it loads.
  State* raw = &state;
  webhook_options.on_attempt = [raw](const WebhookAttempt& attempt) {
    if (attempt.subject.empty()) return;  // a batch's webhook: no job to keep it with
    store::WebhookAttemptRecord record{attempt.delivery_id, attempt.subject, attempt.url, attempt.event,
                                       attempt.attempt, attempt.delivered, attempt.final, attempt.error, jobs::NowMs()};
    Status kept = raw->store->AddWebhookAttempt(record);
    if (!kept.ok()) {
      if (kept.code() != StatusCode::kNotFound) {
        LogWarn("webhook_attempt_not_recorded").Field("job_id", attempt.subject).Field("error", kept.ToString());
      }
      return;
    }
    // Under stop_mutex: once Stop() began, the hub (destroyed before this
    // sender's thread ends) is never touched again.
    std::lock_guard lock(raw->stop_mutex);
    if (raw->stopping || raw->cluster_store) return;
    auto view = raw->scheduler->Describe(attempt.subject);
    if (view.ok()) raw->events->Publish(view->job.id, store::IsFinished(view->job.status), JobViewJson(*raw, *view));
  };
  state.webhooks = std::make_unique<WebhookSender>(webhook_options);
  if (config.rate_limit_per_minute > 0) {
    RateLimiterOptions limits;
    limits.capacity = config.rate_limit_burst;
    limits.refill_per_second = config.rate_limit_per_minute / 60.0;
    state.limiter = std::make_unique<RateLimiter>(limits);
  }
  // In cluster mode every event carries the database's id (ClusterEventFeed):
  // the same on every node, so a client resumes on any of them.
  state.events = std::make_unique<EventHub>(static_cast<size_t>(config.max_event_subscribers),
                                            static_cast<size_t>(config.event_queue_per_client),
                                            static_cast<size_t>(config.event_replay),
                                            state.cluster_store ? EventIds::kGiven : EventIds::kCounted);
}

// Every change of a job of this node's scheduler: to metrics and webhooks, and
// on one machine to /events and waiting requests. In cluster mode those two
// come from the cluster's feed instead (FollowClusterEvents), which carries the
// changes made on every node; the webhook is still sent here, by the node that
// saw the job finish, once.
void ListenToJobs(State& state) {
  State* raw = &state;
  state.scheduler->AddListener([raw](const jobs::JobView& view) {
    const store::Job& job = view.job;
    if (!raw->cluster_store) raw->events->Publish(job.id, store::IsFinished(job.status), JobViewJson(*raw, view));
    if (!store::IsFinished(job.status)) return;
    if (!raw->cluster_store) raw->waiters.Finished(job.id);
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
      Status queued = raw->webhooks->Enqueue(url, body, "job." + std::string(store::JobStatusName(job.status)), job.id);
      if (!queued.ok()) LogWarn("webhook_not_queued").Field("job_id", job.id).Field("url", url).Field("error", queued.ToString());
    }
  });
}

// Cluster mode: every node's job changes, under the database's event ids, to
// /events and to the requests waiting for a job (whichever node runs it).
Status FollowClusterEvents(State& state) {
  if (!state.cluster_store) return Status::Ok();
  State* raw = &state;
  state.event_feed = std::make_unique<ClusterEventFeed>(*state.cluster_store, [raw](int64_t id, const store::Job& job) {
    const bool finished = store::IsFinished(job.status);
    jobs::JobView view = raw->scheduler->DescribeJob(job);
    raw->events->PublishWithId(static_cast<uint64_t>(id), job.id, finished, JobViewJson(*raw, view));
    if (finished) raw->waiters.Finished(job.id);
    // Video jobs are sequenced by whichever node holds them, from every node's segments.
    raw->videos->OnJobChanged(view);
  });
  return state.event_feed->Start();
}

void MakeBatchRunner(State& state) {
  State* raw = &state;
  jobs::BatchOptions batch_options;
  batch_options.max_retries = state.config.batch_max_retries;
  batch_options.retry_delay = std::chrono::milliseconds(static_cast<int64_t>(state.config.batch_retry_delay_s * 1000));
  state.batches = std::make_unique<jobs::BatchRunner>(
      *state.store, *state.batch_store, *state.scheduler, batch_options, [raw](const std::string& batch_id) {
        auto batch = raw->batch_store->GetBatch(batch_id);
        auto rows = raw->batch_store->ListBatchImages(batch_id);
        if (!batch.ok() || !rows.ok() || batch->webhook_url.empty()) return;
        Status queued = raw->webhooks->Enqueue(batch->webhook_url, BatchStatusJson(*batch, *rows), "batch.settled");
        if (!queued.ok()) LogWarn("webhook_not_queued").Field("batch_id", batch_id).Field("error", queued.ToString());
      });
  state.scheduler->AddListener([raw](const jobs::JobView& view) { raw->batches->OnJobChanged(view); });
}

void MakeVideoRunner(State& state) {
  jobs::VideoRunnerOptions options;
  options.uploads_dir = state.config.UploadsDir();
  options.results_dir = state.config.ResultsDir();
  options.limits.max_pixels = static_cast<uint64_t>(state.config.max_video_pixels);
  options.limits.max_frames = state.config.max_video_frames;
  options.cluster = state.cluster_store;
  options.node_id = state.config.node_id;
  state.videos = std::make_unique<jobs::VideoRunner>(*state.store, *state.scheduler, options);
  // In a cluster the videos hear every node's segments on the cluster's feed
  // (FollowClusterEvents) instead.
  if (state.cluster_store) return;
  State* raw = &state;
  state.scheduler->AddListener([raw](const jobs::JobView& view) { raw->videos->OnJobChanged(view); });
}

Status StartHttp(State& state) {
  const ServerConfig& config = state.config;
  RegisterJobRoutes(state);
  RegisterFileRoutes(state);
  RegisterUpscaleRoutes(state);
  RegisterOpsRoutes(state);
  RegisterBatchRoutes(state);
  RegisterVideoRoutes(state);
  RegisterDashboardRoutes(state);
  RegisterCatalogRoutes(state);
  HttpServerOptions options;
  options.host = config.host;
  options.port = config.port;
  options.io_threads = config.http_io_threads;
  options.handler_threads = config.http_threads;
  auto ms = [](double seconds) { return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)); };
  options.header_timeout = ms(config.header_timeout_s);
  options.body_timeout = ms(config.body_timeout_s);
  options.idle_timeout = ms(config.idle_timeout_s);
  options.write_timeout = ms(config.write_timeout_s);
  options.max_connections = static_cast<size_t>(config.max_connections);
  options.max_connections_per_client = static_cast<size_t>(config.max_connections_per_client);
  options.max_memory_body_bytes = static_cast<uint64_t>(config.max_json_body_kb * 1024);
  auto bound = HttpServer::Bind(options, state.router, MakeRequestGuard(state), MakeRequestObserver(state));
  if (!bound.ok()) {
    return IoError("cannot listen on " + config.host + ":" + std::to_string(config.port) + " (" +
                   bound.status().message() + ")");
  }
  state.http = std::move(*bound);
  state.port = state.http->port();
  return Status::Ok();
}

void StartRetention(State& state) {
  // Expired jobs go before the server answers anyone, then once an hour.
  PurgeExpired(state);
  State* raw = &state;
  state.retention_thread = std::thread([raw] {
    std::unique_lock lock(raw->stop_mutex);
    while (!raw->stop_cv.wait_for(lock, std::chrono::hours(1), [raw] { return raw->stopping; })) {
      lock.unlock();
      PurgeExpired(*raw);
      lock.lock();
    }
  });
}

void CleanUpLeftovers(State& state) {
  LeftoversRemoved removed = RemoveLeftovers(
      state.config.UploadsDir(), state.config.BatchRoot(), state.config.node_id,
      [&state](const std::string& batch_id) { return state.batch_store->GetBatch(batch_id).ok(); });
  LogInfo("startup_cleanup").Field("node_id", state.config.node_id)
      .Field("temporary_uploads", removed.temporary_uploads).Field("incomplete_batches", removed.incomplete_batches);
}

}  // namespace

JobServer::JobServer(std::unique_ptr<State> state) : state_(std::move(state)) {}

JobServer::~JobServer() { Stop(); }

int JobServer::port() const { return state_->port; }

Result<std::unique_ptr<JobServer>> JobServer::Start(const ServerConfig& config, const std::string& self_binary) {
  auto state = std::make_unique<State>();
  state->config = config;
  if (state->config.node_id.empty()) state->config.node_id = HostName();
  state->self_binary = config.worker_binary.empty() ? self_binary : config.worker_binary;
  if (Status made = MakeFolders(config); !made.ok()) return made;
  if (Status opened = OpenStore(*state); !opened.ok()) return opened;
  CleanUpLeftovers(*state);
  if (Status found = FindLanes(*state); !found.ok()) return found;
  auto factories = MakeExecutorFactories(*state);
  if (!factories.ok()) return factories.status();
  MakeScheduler(*state, std::move(*factories));
  MakeServices(*state);
  ListenToJobs(*state);
  MakeBatchRunner(*state);
  MakeVideoRunner(*state);
  if (Status joined = JoinCluster(*state); !joined.ok()) return joined;
  if (Status following = FollowClusterEvents(*state); !following.ok()) return following;
  if (Status started = state->scheduler->Start(); !started.ok()) return started;
  if (Status resumed = state->batches->Start(); !resumed.ok()) {
    state->scheduler->Stop();
    return resumed;
  }
  if (Status resumed = state->videos->Start(); !resumed.ok()) {
    state->batches->Stop();
    state->scheduler->Stop();
    return resumed;
  }
  if (Status listening = StartHttp(*state); !listening.ok()) {
    state->videos->Stop();
    state->batches->Stop();
    state->scheduler->Stop();
    return listening;
  }
  if (state->cluster) {
    // Registered again now that the port is bound (--port 0): the URL other
    // nodes redirect to. Then the member's thread starts.
    Status member = state->cluster->Register(AdvertiseUrl(*state));
    if (member.ok()) member = state->cluster->Start();
    if (!member.ok()) {
      state->http->Stop();
      state->videos->Stop();
      state->batches->Stop();
      state->scheduler->Stop();
      return member;
    }
  }
  StartRetention(*state);
  LogInfo("server_listening").Field("host", config.host).Field("port", state->port)
      .Field("lanes", state->lanes.size()).Field("store", store::DescribeStore(config.store, config.DbPath())).Field("results", config.ResultsDir())
      .Field("cluster_node", state->cluster ? config.node_id : "");
  return std::unique_ptr<JobServer>(new JobServer(std::move(state)));
}

Status JobServer::Serve() {
  state_->http->Run();
  std::lock_guard lock(state_->stop_mutex);
  if (!state_->stopping) return IoError("the HTTP listener stopped unexpectedly");
  return Status::Ok();
}

void JobServer::Drain() {
  const double timeout_s = state_->config.drain_timeout_s;
  state_->draining = true;
  LogInfo("server_draining").Field("timeout_s", timeout_s);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  int still_running = state_->scheduler->Drain(deadline);
  {
    std::lock_guard lock(state_->stop_mutex);
    if (state_->stopping) {  // a second signal: Stop() runs on its thread and hands the jobs back
      LogInfo("server_drain_interrupted");
      return;
    }
  }
  LogInfo("server_drained").Field("handed_back", still_running);
  Stop();
}

void JobServer::Stop() {
  {
    std::lock_guard lock(state_->stop_mutex);
    if (state_->stopping) return;
    state_->stopping = true;
  }
  state_->stop_cv.notify_all();
  LogInfo("server_stopping");
  if (state_->event_feed) state_->event_feed->Stop();  // publishes to the hub: stopped before it closes
  state_->events->Close();
  state_->waiters.Close();
  state_->http->Stop();
  state_->batches->Stop();
  state_->videos->Stop();  // a join in progress ends first; its video is resumed on the next start
  state_->scheduler->Stop();  // running jobs handed back (fenced) before the node retires
  if (state_->cluster) state_->cluster->Stop();
  if (state_->retention_thread.joinable()) state_->retention_thread.join();
  state_->webhooks->Flush(std::chrono::seconds(5));
  LogInfo("server_stopped");
}

}  // namespace tessera::server
