// What the routes share: configuration, store, scheduler, and the server's own
// services. Internal to src/server.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/model_catalog.h"
#include "jobs/batch_runner.h"
#include "jobs/cluster_member.h"
#include "jobs/scheduler.h"
#include "jobs/video_runner.h"
#include "server/cluster_event_feed.h"
#include "server/dashboard_session.h"
#include "server/event_hub.h"
#include "server/http_router.h"
#include "server/http_server.h"
#include "server/http_status_map.h"
#include "server/job_server.h"
#include "server/job_waiters.h"
#include "server/metrics.h"
#include "server/rate_limiter.h"
#include "server/server_config.h"
#include "server/webhook_sender.h"
#include "store/job_store.h"

namespace tessera::server {

struct JobServer::State {
  ServerConfig config;
  std::string self_binary;
  std::unique_ptr<store::JobStore> store;
  std::vector<jobs::LaneSpec> lanes;
  std::unique_ptr<jobs::Scheduler> scheduler;
  // Cluster mode (a PostgreSQL store, docs/cluster.md): the store's cluster side
  // (the same object as `store`) and this node's membership; null on SQLite.
  store::ClusterStore* cluster_store = nullptr;
  std::unique_ptr<jobs::ClusterMember> cluster;
  store::BatchStore* batch_store = nullptr;  // the same object as `store`
  std::unique_ptr<jobs::BatchRunner> batches;
  std::unique_ptr<jobs::VideoRunner> videos;  // video jobs and their segments (docs/video.md)
  std::unique_ptr<WebhookSender> webhooks;
  ServerMetrics metrics;
  std::unique_ptr<EventHub> events;
  std::unique_ptr<RateLimiter> limiter;
  std::unique_ptr<DashboardSessions> sessions;  // the dashboard's cookies (routes_dashboard.cpp)
  JobWaiters waiters;
  std::vector<std::string> generate_argv;
  HttpRouter router;
  // Cluster mode: the cluster's job changes, published to `events` under the
  // database's ids (cluster_event_feed.h). After what it delivers to: stopped first.
  std::unique_ptr<ClusterEventFeed> event_feed;
  std::unique_ptr<HttpServer> http;  // after everything its handlers use: destroyed first
  int port = 0;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  std::mutex stop_mutex;
  std::condition_variable stop_cv;
  bool stopping = false;
  // Set by Drain(): routes that submit work answer 503, /health says draining.
  std::atomic<bool> draining{false};
  std::thread retention_thread;
};

// Token and rate limit before every route; metrics and a log line after.
RequestGuard MakeRequestGuard(JobServer::State& state);
RequestObserver MakeRequestObserver(JobServer::State& state);

// Route groups, each in its own file.
void RegisterJobRoutes(JobServer::State& state);      // generate, status, delete jobs, lookup, webhook
void RegisterFileRoutes(JobServer::State& state);     // files, videos
void RegisterUpscaleRoutes(JobServer::State& state);  // upscale
void RegisterOpsRoutes(JobServer::State& state);      // health, ready, metrics, events
void RegisterBatchRoutes(JobServer::State& state);    // image batches (seed 004)
void RegisterVideoRoutes(JobServer::State& state);    // POST /upscale/video (issue 19)
void RegisterDashboardRoutes(JobServer::State& state);  // the page at /, its files, /session
void RegisterCatalogRoutes(JobServer::State& state);    // what the page reads: models, logs, inputs, counts, retry

// The JSON of a job for the API (GET /status/{id} and friends).
std::string JobViewJson(const JobServer::State& state, const jobs::JobView& view);
// A safe result file name: no path parts, no leading dot, [A-Za-z0-9._-] only.
bool IsSafeFileName(const std::string& name);
// Splits "a,b,,c" into non-empty trimmed parts.
std::vector<std::string> SplitCsv(const std::string& text);
// The worker parameters of an upscale (engine, quality, format) from what a client
// asked: a model name (or lanczos and a scale) and a format. kInvalid for a bad
// choice (answer 400), kDeviceUnavailable when no models are installed (503).
struct UpscaleChoice {
  std::string params_json;
  std::string model;
  std::string extension;  // ".png"
  std::string content_type;
};
Result<UpscaleChoice> ResolveUpscaleChoice(const JobServer::State& state, const std::string& model,
                                           const std::string& scale, const std::string& format);
// Answers a file (Range, ETag, Last-Modified, cache headers); 404 when absent.
void ServeFileAt(const std::string& path, const std::string& name, const HttpRequest& request,
                 HttpResponse& response);
// GET /images/batches/{id}/status's answer (also the batch webhook's body).
std::string BatchStatusJson(const store::Batch& batch, const std::vector<store::BatchImageRow>& rows);
// Deletes a result file; false when it did not exist.
bool RemoveResultFile(const JobServer::State& state, const std::string& filename);
// Deletes a job's cached thumbnails (GET /jobs/{id}/thumbnail), if any.
void RemoveThumbnails(const JobServer::State& state, const std::string& job_id);

}  // namespace tessera::server
