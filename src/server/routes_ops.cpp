// GET /health (is the process answering), GET /ready (can it do work: store,
// folders, generator checkpoints), GET /metrics (Prometheus), GET /events
// (server-sent events of job progress).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>

#include "server/server_state.h"
#include "store/store_factory.h"

namespace tessera::server {
namespace {

using nlohmann::json;

bool IsWritableDir(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode) && ::access(path.c_str(), W_OK) == 0;
}

void Health(JobServer::State& state, const HttpRequest&, HttpResponse& response) {
  double uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - state.started).count();
  // Draining (SIGTERM): 503, so that a load balancer sends new work elsewhere
  // while this process finishes what it runs.
  bool draining = state.draining;
  ReplyJson(response, draining ? 503 : 200,
            json{{"status", draining ? "draining" : "ok"}, {"uptime_seconds", static_cast<int64_t>(uptime)}}.dump());
}

void Ready(JobServer::State& state, const HttpRequest&, HttpResponse& response) {
  json checks = json::object();
  bool ready = true;
  auto check = [&](const std::string& name, bool ok, const std::string& detail) {
    checks[name] = json{{"ok", ok}, {"detail", detail}};
    ready = ready && ok;
  };
  auto counts = state.store->CountByStatus();
  check("store", counts.ok(),
        counts.ok() ? store::DescribeStore(state.config.store, state.config.DbPath()) : counts.status().message());
  check("results_dir", IsWritableDir(state.config.ResultsDir()), state.config.ResultsDir());
  check("logs_dir", IsWritableDir(state.config.LogsDir()), state.config.LogsDir());
  struct stat info {};
  bool ckpt = ::stat(state.config.wan_ckpt_dir.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
  check("ckpt_dir", ckpt, ckpt ? state.config.wan_ckpt_dir
                               : state.config.wan_ckpt_dir + " is missing: generate jobs would fail (set WAN_CKPT_DIR)");
  if (state.draining) check("draining", false, "the server is stopping (SIGTERM): it takes no new jobs");
  ReplyJson(response, ready ? 200 : 503, json{{"ready", ready}, {"checks", checks}}.dump());
}

// The last `event=model_cache` line an upscale worker wrote to its log (it logs
// one after each request with --stats): the lane's model cache as of its last
// request. The counters restart with the worker, as Prometheus counters may.
// "cpu:0" -> "cpu-0", as the worker log files are named.
std::string LaneFileName(std::string name) {
  for (char& c : name) {
    if (c == ':') c = '-';
  }
  return name;
}

std::map<std::string, std::string> LastModelCacheLine(const std::string& log_path) {
  std::map<std::string, std::string> fields;
  int fd = ::open(log_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fields;
  struct stat info {};
  std::string tail;
  if (::fstat(fd, &info) == 0) {
    off_t from = info.st_size > 65536 ? info.st_size - 65536 : 0;
    tail.resize(static_cast<size_t>(info.st_size - from));
    ssize_t n = ::pread(fd, tail.data(), tail.size(), from);
    tail.resize(n > 0 ? static_cast<size_t>(n) : 0);
  }
  ::close(fd);
  size_t at = tail.rfind(" event=model_cache ");
  if (at == std::string::npos) return fields;
  std::string line = tail.substr(at, tail.find('\n', at) - at);
  size_t pos = 0;
  while ((pos = line.find(' ', pos)) != std::string::npos) {
    ++pos;
    size_t equals = line.find('=', pos);
    size_t end = line.find(' ', pos);
    if (equals == std::string::npos || (end != std::string::npos && equals > end)) continue;
    fields[line.substr(pos, equals - pos)] = line.substr(equals + 1, end == std::string::npos ? end : end - equals - 1);
  }
  return fields;
}

void Metrics(JobServer::State& state, const HttpRequest&, HttpResponse& response) {
  std::string out;
  auto counts = state.store->CountByStatus();
  if (counts.ok()) {
    out += "# HELP tessera_jobs Jobs in the store, by status.\n# TYPE tessera_jobs gauge\n";
    for (const auto& [status, count] : *counts) {
      out += "tessera_jobs{status=\"" + std::string(store::JobStatusName(status)) + "\"} " + std::to_string(count) + "\n";
    }
  }
  auto lanes = state.scheduler->Lanes();
  int64_t depth = 0;
  for (const auto& lane : lanes) depth += lane.queued;
  // A cluster's queue is shared by every node's lanes: its depth is the store's.
  if (state.cluster_store && counts.ok()) depth = (*counts)[store::JobStatus::kQueued];
  out += "# HELP tessera_queue_depth Jobs waiting, all lanes (in a cluster: the shared queue, the same on every node).\n"
         "# TYPE tessera_queue_depth gauge\n";
  out += "tessera_queue_depth " + std::to_string(depth) + "\n";
  out += "# HELP tessera_lane_queued Jobs waiting per lane.\n# TYPE tessera_lane_queued gauge\n";
  for (const auto& lane : lanes) {
    out += "tessera_lane_queued{lane=\"" + PrometheusLabel(lane.name) + "\"} " + std::to_string(lane.queued) + "\n";
  }
  out += "# HELP tessera_lane_busy 1 while the lane runs a job.\n# TYPE tessera_lane_busy gauge\n";
  for (const auto& lane : lanes) {
    out += "tessera_lane_busy{lane=\"" + PrometheusLabel(lane.name) + "\"} " +
           (lane.running_id.empty() ? "0" : "1") + "\n";
  }
  out += "# HELP tessera_lane_busy_seconds_total Time the lane spent running jobs.\n"
         "# TYPE tessera_lane_busy_seconds_total counter\n";
  for (const auto& lane : lanes) {
    char value[32];
    std::snprintf(value, sizeof value, "%.3f", lane.busy_seconds);
    out += "tessera_lane_busy_seconds_total{lane=\"" + PrometheusLabel(lane.name) + "\"} " + value + "\n";
  }
  const std::pair<const char*, const char*> cache_series[] = {
      {"hits", "counter"}, {"misses", "counter"}, {"loads", "counter"}, {"evictions", "counter"},
      {"load_failures", "counter"}, {"resident_mb", "gauge"}, {"entries", "gauge"}, {"vram_mb", "gauge"}};
  std::vector<std::pair<std::string, std::map<std::string, std::string>>> caches;
  for (const auto& lane : lanes) {
    auto fields = LastModelCacheLine(state.config.LogsDir() + "/worker-" + LaneFileName(lane.spec.name) + ".log");
    if (!fields.empty()) caches.emplace_back(lane.name, std::move(fields));
  }
  for (const auto& [key, type] : cache_series) {
    std::string metric = std::string("tessera_model_cache_") + key + (std::string(type) == "counter" ? "_total" : "");
    out += "# HELP " + metric + " The upscale worker's loaded-model cache (as of its last request), by lane.\n";
    out += "# TYPE " + metric + " " + type + "\n";
    for (const auto& [lane, fields] : caches) {
      auto it = fields.find(key);
      if (it != fields.end()) out += metric + "{lane=\"" + PrometheusLabel(lane) + "\"} " + it->second + "\n";
    }
  }
  if (state.cluster_store) {
    // Every node scrapes as itself (its own lanes above, named <node>/<lane>);
    // the nodes the cluster counts are the same on every node.
    auto nodes = state.cluster_store->ListNodes();
    if (nodes.ok()) {
      int64_t alive = 0;
      for (const auto& node : *nodes) alive += node.alive ? 1 : 0;
      out += "# HELP tessera_cluster_nodes Nodes registered on the shared store, by state.\n"
             "# TYPE tessera_cluster_nodes gauge\n";
      out += "tessera_cluster_nodes{state=\"alive\"} " + std::to_string(alive) + "\n";
      out += "tessera_cluster_nodes{state=\"dead\"} " + std::to_string(static_cast<int64_t>(nodes->size()) - alive) + "\n";
    }
  }
  out += "# HELP tessera_event_subscribers Clients following GET /events.\n# TYPE tessera_event_subscribers gauge\n";
  out += "tessera_event_subscribers " + std::to_string(state.events->subscriber_count()) + "\n";
  out += "# HELP tessera_http_open_connections HTTP connections open now, all clients.\n"
         "# TYPE tessera_http_open_connections gauge\n";
  out += "tessera_http_open_connections " + std::to_string(state.http ? state.http->open_connections() : 0) + "\n";
  WebhookStats webhooks = state.webhooks->stats();
  out += "# HELP tessera_webhook_deliveries_total Webhook deliveries by outcome (failed: one per failed attempt).\n"
         "# TYPE tessera_webhook_deliveries_total counter\n";
  out += "tessera_webhook_deliveries_total{outcome=\"delivered\"} " + std::to_string(webhooks.delivered) + "\n";
  out += "tessera_webhook_deliveries_total{outcome=\"failed_attempt\"} " + std::to_string(webhooks.failed_attempts) + "\n";
  out += "tessera_webhook_deliveries_total{outcome=\"abandoned\"} " + std::to_string(webhooks.abandoned) + "\n";
  out += state.metrics.Render();
  response.status = 200;
  response.content_type = "text/plain; version=0.0.4";
  response.body = std::move(out);
}

bool IsFinalStatus(const std::string& status) {
  return status == "success" || status == "error" || status == "canceled";
}

// text/event-stream: "id: N", "event: job" and the job's JSON on every change; a
// comment every heartbeat (15 s) keeps proxies from closing an idle stream.
// ?job_id= follows one job: its current state comes first (so a client never
// misses a change made before it connected), and the stream ends once the job
// finished. Last-Event-ID (header, or ?last_event_id=) replays the events after
// it that the hub still keeps. The stream itself runs on the event loop
// (event_stream_writer.cpp).
void Events(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  std::string only = request.Param("job_id");
  std::optional<uint64_t> last_event_id;
  std::string resume = request.HasHeader("Last-Event-ID") ? request.Header("Last-Event-ID") : request.Param("last_event_id");
  if (!resume.empty()) {
    char* end = nullptr;
    unsigned long long id = std::strtoull(resume.c_str(), &end, 10);
    if (end != resume.c_str() + resume.size() || resume[0] == '-') {
      return ReplyError(response, 400, "Last-Event-ID must be the id of an earlier event (a whole number)");
    }
    last_event_id = id;
  }
  // Subscribed before the job is read: a change made in between is then queued,
  // never lost between the two.
  auto subscriber = state.events->Subscribe(only, last_event_id);
  if (!subscriber) {
    response.SetHeader("Retry-After", "5");
    return ReplyError(response, 503, "too many event subscribers (max_event_subscribers); retry later");
  }
  std::string first;
  bool finished = false;
  if (!only.empty()) {
    auto view = state.scheduler->Describe(only);
    if (!view.ok()) {
      if (view.status().code() == StatusCode::kNotFound) return ReplyError(response, 404, "no job " + only);
      return ReplyStatus(response, view.status());
    }
    finished = IsFinalStatus(std::string(store::JobStatusName(view->job.status)));
    first = "event: job\ndata: " + JobViewJson(state, *view) + "\n\n";
  }
  response.status = 200;
  response.events = std::move(subscriber);
  response.body = std::move(first);
  response.events_end_after_body = finished;
}

// A cluster's lanes beyond this node's (GET /lanes): every alive node's, from
// the nodes table, with the job each runs from the jobs table. What only the
// node itself knows (busy time, its worker's memory) is null.
void AddOtherNodesLanes(JobServer::State& state, json& lanes, json& nodes_out) {
  auto nodes = state.cluster_store->ListNodes();
  if (!nodes.ok()) return;
  store::JobFilter running_filter;
  running_filter.statuses = {store::JobStatus::kRunning};
  auto running = state.store->List(running_filter);
  std::map<std::string, std::string> running_on;  // cluster lane name -> job id
  if (running.ok()) {
    for (const store::Job& job : *running) running_on[job.lane] = job.id;
  }
  for (const store::NodeRecord& node : *nodes) {
    nodes_out.push_back(json{{"node_id", node.node_id}, {"advertise_url", node.advertise_url}, {"alive", node.alive},
                             {"lanes", node.lanes}, {"lease_expires_ms", node.lease_expires_ms}});
    if (!node.alive || node.node_id == state.config.node_id) continue;
    for (const std::string& name : node.lanes) {
      std::string device = name.substr(name.find('/') + 1);
      auto job = running_on.find(name);
      json gpu_id = nullptr;
      if (device.rfind("cuda:", 0) == 0) gpu_id = std::atoi(device.c_str() + 5);
      lanes.push_back(json{{"name", name}, {"node", node.node_id}, {"device", device}, {"gpu_id", gpu_id},
                           {"state", job == running_on.end() ? "idle" : "busy"},
                           {"running_job", job == running_on.end() ? json(nullptr) : json(job->second)},
                           {"queued", 0}, {"busy_seconds", nullptr}, {"model_memory_mb", nullptr},
                           {"vram_mb", nullptr}});
    }
  }
}

// GET /lanes: every lane with its device, state, current job, backlog and the
// memory its upscale worker reported last (null before its first request; VRAM
// only from a worker on a GPU). In a cluster, every alive node's lanes (named
// <node>/<lane>), the nodes, and the shared queue's length.
void Lanes(JobServer::State& state, const HttpRequest&, HttpResponse& response) {
  json lanes = json::array();
  for (const auto& lane : state.scheduler->Lanes()) {
    auto cache = LastModelCacheLine(state.config.LogsDir() + "/worker-" + LaneFileName(lane.spec.name) + ".log");
    auto resident = cache.find("resident_mb");
    auto vram = cache.find("vram_mb");
    lanes.push_back(json{
        {"name", lane.name},
        {"node", state.cluster_store ? json(state.config.node_id) : json(nullptr)},
        {"device", lane.spec.name},
        {"gpu_id", lane.spec.gpu_id >= 0 ? json(lane.spec.gpu_id) : json(nullptr)},
        {"state", lane.running_id.empty() ? "idle" : "busy"},
        {"running_job", lane.running_id.empty() ? json(nullptr) : json(lane.running_id)},
        {"queued", lane.queued},
        {"busy_seconds", lane.busy_seconds},
        {"model_memory_mb", resident == cache.end() ? json(nullptr) : json(std::atof(resident->second.c_str()))},
        {"vram_mb", vram == cache.end() ? json(nullptr) : json(std::atof(vram->second.c_str()))},
    });
  }
  if (!state.cluster_store) return ReplyJson(response, 200, json{{"lanes", lanes}}.dump());
  json nodes = json::array();
  AddOtherNodesLanes(state, lanes, nodes);
  auto counts = state.store->CountByStatus();
  json queued = counts.ok() ? json((*counts)[store::JobStatus::kQueued]) : json(nullptr);
  ReplyJson(response, 200, json{{"lanes", lanes}, {"nodes", nodes}, {"queued", queued}}.dump());
}

}  // namespace

void RegisterOpsRoutes(JobServer::State& state) {
  Route& health = state.router.Add("GET", "/health", [&state](const HttpRequest& q, HttpResponse& r) { Health(state, q, r); });
  health.needs_no_token = true;
  health.not_rate_limited = true;
  health.runs_on_event_loop = true;
  state.router.Add("GET", "/ready", [&state](const HttpRequest& q, HttpResponse& r) { Ready(state, q, r); })
      .not_rate_limited = true;
  state.router.Add("GET", "/metrics", [&state](const HttpRequest& q, HttpResponse& r) { Metrics(state, q, r); })
      .not_rate_limited = true;
  state.router.Add("GET", "/events", [&state](const HttpRequest& q, HttpResponse& r) { Events(state, q, r); });
  state.router.Add("GET", "/lanes", [&state](const HttpRequest& q, HttpResponse& r) { Lanes(state, q, r); });
}

}  // namespace tessera::server
