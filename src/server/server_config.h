// The job server's configuration: one table of settings, read from (lowest to
// highest precedence) built-in defaults, a JSON config file, environment variables
// and command-line flags. docs/server.md lists every setting; `tessera serve
// --help` prints the same table.
//
// Invalid values refuse to start the server with a message naming the setting and
// where the value came from.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace tessera::server {

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string data_dir = "data";
  // Empty: derived from data_dir (data/results, data/logs, data/state.db, data/uploads).
  std::string results_dir;
  std::string logs_dir;
  std::string db_path;
  std::string uploads_dir;
  // Empty: the SQLite file db_path. A postgresql:// URL: that shared database
  // (store/store_factory.h), which several servers may name.
  std::string store;
  // A directory every node of a cluster names (NFS...): when set, uploads, image
  // batches and results live under it, so that any node can run any job and
  // serve any result (docs/cluster.md). Empty: they live under data_dir.
  std::string shared_dir;
  // How other nodes and clients reach this server (a cluster's /files redirects);
  // empty: http://<host, or the host name when listening on every address>:<port>.
  std::string advertise_url;
  double node_lease_s = 10;  // a cluster node silent this long is presumed dead

  std::optional<std::string> gpu_ids;  // GPU_IDS; unset: NVIDIA_VISIBLE_DEVICES, then nvidia-smi
  int cpu_lanes = 1;

  std::string wan_ckpt_dir = "/models/Wan2.2-TI2V-5B";
  std::string generate_command;  // empty: the Wan2.2 template (jobs/command_runner.h)
  std::string generate_cwd;      // where the command runs; empty: the server's directory
  std::string resize_mode = "pad";
  double generate_timeout_s = 0;  // 0: none

  std::string worker_binary;  // empty: this executable
  std::string model_dir;      // empty: the worker's default
  std::string default_model = "realesr-animevideov3-x2";
  double upscale_timeout_s = 600;
  int worker_threads = 0;
  // Server video jobs (POST /upscale/video, docs/video.md): refused before work
  // beyond these; a segment's run is stopped after video_segment_timeout_s.
  int max_video_pixels = 3840 * 2160;
  int max_video_frames = 0;  // 0: no limit
  double video_segment_timeout_s = 0;  // 0: none

  std::string host_base_url;  // prefix for file_url behind a reverse proxy
  double retention_days = 0;  // 0: keep forever
  std::string token;          // bearer token; required when listening beyond loopback
  double rate_limit_per_minute = 600;  // per client; 0: off
  double rate_limit_burst = 60;
  double max_body_mb = 256;
  std::string restart_policy = "requeue";  // requeue | fail
  // SIGTERM: how long running jobs may take to finish before they are handed
  // back to the queue (docs/server.md, "Stopping"); 0: hand them back at once.
  double drain_timeout_s = 30;
  int max_attempts = 3;
  std::string webhook_secret;
  int webhook_max_attempts = 5;
  double webhook_backoff_s = 1.0;
  double default_generate_seconds = 600;
  double default_upscale_seconds = 10;
  int http_threads = 8;  // route handlers
  // The HTTP front (docs/server.md, "Connections and limits").
  int http_io_threads = 2;                   // event-loop threads carrying every connection
  double header_timeout_s = 10;              // the whole request head
  double body_timeout_s = 30;                // each 64 KiB of body
  double idle_timeout_s = 60;                // a keep-alive connection between requests
  double write_timeout_s = 30;               // each write of an answer
  int max_connections = 4096;                // open at once, all clients
  int max_connections_per_client = 128;      // open at once from one address
  int max_event_subscribers = 4096;          // GET /events streams at once
  int event_queue_per_client = 256;          // events waiting for one slow /events client
  int event_replay = 1024;                   // last events kept for Last-Event-ID resume
  double max_json_body_kb = 1024;            // bodies read in memory (JSON routes)
  std::string node_id;                       // names this server's temporary files; empty: the host name
  // Image batches (seed 004).
  int batch_max_retries = 3;
  int batch_parallel_workers = 5;
  double batch_retry_delay_s = 300;
  double max_upload_mb = 10240;  // a whole batch upload

  // The directories with defaults applied.
  std::string ResultsDir() const;
  std::string LogsDir() const;
  std::string DbPath() const;
  std::string UploadsDir() const;
  // Where games/<game>/batches/<batch> live: shared_dir, else data_dir.
  std::string BatchRoot() const;
};

// One setting: its key (config file and --flag spelling), its environment
// variable, a description, and how to apply a text value.
struct SettingSpec {
  std::string key;  // snake_case: "results_dir"; the flag is --results-dir
  std::string env;  // "RESULTS_DIR"; empty when none
  std::string help;
  std::function<Status(ServerConfig&, const std::string&)> apply;
};

const std::vector<SettingSpec>& ServerSettings();

// Builds the configuration. `flags` holds the values given on the command line,
// by key; `environment` the process environment (injected for tests);
// `config_path` a JSON file (empty: $TESSERA_CONFIG, else none).
Result<ServerConfig> LoadServerConfig(const std::map<std::string, std::string>& flags,
                                      const std::map<std::string, std::string>& environment,
                                      std::string config_path);

// Checks values that depend on each other (token beyond loopback...).
Status ValidateServerConfig(const ServerConfig& config);

std::map<std::string, std::string> ProcessEnvironment();

}  // namespace tessera::server
