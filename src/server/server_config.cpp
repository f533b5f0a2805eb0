#include "server/server_config.h"

#include <unistd.h>

#include <charconv>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

extern char** environ;

namespace tessera::server {
namespace {

Status ParseIntIn(const std::string& text, int low, int high, int* out) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < low || value > high) {
    return InvalidError("\"" + text + "\" is not a whole number from " + std::to_string(low) + " to " +
                        std::to_string(high));
  }
  *out = value;
  return Status::Ok();
}

Status ParseNumberAtLeast(const std::string& text, double low, double* out) {
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(value) || value < low) {
    return InvalidError("\"" + text + "\" is not a number of at least " + std::to_string(low));
  }
  *out = value;
  return Status::Ok();
}

using Apply = std::function<Status(ServerConfig&, const std::string&)>;

Apply Text(std::string ServerConfig::*field, bool allow_empty = true) {
  return [field, allow_empty](ServerConfig& c, const std::string& v) {
    if (!allow_empty && v.empty()) return InvalidError("must not be empty");
    c.*field = v;
    return Status::Ok();
  };
}
Apply Integer(int ServerConfig::*field, int low, int high) {
  return [=](ServerConfig& c, const std::string& v) { return ParseIntIn(v, low, high, &(c.*field)); };
}
Apply Number(double ServerConfig::*field, double low) {
  return [=](ServerConfig& c, const std::string& v) { return ParseNumberAtLeast(v, low, &(c.*field)); };
}
Apply OneOf(std::string ServerConfig::*field, std::vector<std::string> allowed) {
  return [=](ServerConfig& c, const std::string& v) {
    std::string list;
    for (const auto& a : allowed) {
      if (v == a) {
        c.*field = v;
        return Status::Ok();
      }
      list += (list.empty() ? "" : ", ") + a;
    }
    return InvalidError("\"" + v + "\" is not one of " + list);
  };
}

std::string Join(const std::string& dir, const std::string& leaf) {
  if (dir.empty()) return leaf;
  return dir.back() == '/' ? dir + leaf : dir + "/" + leaf;
}

bool IsLoopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace

std::string ServerConfig::BatchRoot() const { return shared_dir.empty() ? data_dir : shared_dir; }
std::string ServerConfig::ResultsDir() const { return results_dir.empty() ? Join(BatchRoot(), "results") : results_dir; }
std::string ServerConfig::LogsDir() const { return logs_dir.empty() ? Join(data_dir, "logs") : logs_dir; }
std::string ServerConfig::DbPath() const { return db_path.empty() ? Join(data_dir, "state.db") : db_path; }
std::string ServerConfig::UploadsDir() const { return uploads_dir.empty() ? Join(BatchRoot(), "uploads") : uploads_dir; }

const std::vector<SettingSpec>& ServerSettings() {
  using C = ServerConfig;
  static const std::vector<SettingSpec> settings = {
      {"host", "TESSERA_HOST", "Address to listen on (a non-loopback address requires a token)",
       Text(&C::host, false)},
      {"port", "TESSERA_PORT", "TCP port (0: any free port; see --port-file)", Integer(&C::port, 0, 65535)},
      {"data_dir", "TESSERA_DATA_DIR", "Base folder for results, logs, uploads and the database",
       Text(&C::data_dir, false)},
      {"results_dir", "RESULTS_DIR", "Where finished videos and images go (default: <data_dir>/results)",
       Text(&C::results_dir)},
      {"logs_dir", "LOGS_DIR", "Per-job logs {job_id}.log (default: <data_dir>/logs)", Text(&C::logs_dir)},
      {"db_path", "TESSERA_DB", "SQLite database (default: <data_dir>/state.db)", Text(&C::db_path)},
      {"store", "TESSERA_STORE",
       "Keep jobs in PostgreSQL: a postgresql://user@host/db URL (docs/store.md); empty: the SQLite database",
       Text(&C::store)},
      {"uploads_dir", "TESSERA_UPLOADS_DIR", "Stored upscale inputs (default: <data_dir>/uploads)",
       Text(&C::uploads_dir)},
      {"gpu_ids", "GPU_IDS",
       "GPUs to run on, e.g. 0,1 (default: NVIDIA_VISIBLE_DEVICES, then nvidia-smi -L, then the other real GPUs "
       "`tessera devices` numbers; none: CPU lanes)",
       [](C& c, const std::string& v) {
         c.gpu_ids = v;
         return Status::Ok();
       }},
      {"cpu_lanes", "TESSERA_CPU_LANES", "Lanes to run when there is no GPU", Integer(&C::cpu_lanes, 1, 256)},
      {"wan_ckpt_dir", "WAN_CKPT_DIR", "Model checkpoint folder passed to the generator ({ckpt_dir}); /ready checks it",
       Text(&C::wan_ckpt_dir)},
      {"generate_command", "TESSERA_GENERATE_COMMAND",
       "Generator command template (no shell; placeholders {prompt} {width} {height} {size} {output} {ckpt_dir} "
       "{gpu_id} {job_id}); default: Wan2.2's generate.py",
       Text(&C::generate_command)},
      {"generate_cwd", "WAN_DIR", "Folder the generator runs in (the Wan2.2 checkout)", Text(&C::generate_cwd)},
      {"resize_mode", "TESSERA_RESIZE_MODE", "704 -> 720 conversion when a job does not say: pad or scale",
       OneOf(&C::resize_mode, {"pad", "scale"})},
      {"generate_timeout_s", "TESSERA_GENERATE_TIMEOUT", "Seconds before a generator run is killed (0: never)",
       Number(&C::generate_timeout_s, 0)},
      {"worker_binary", "TESSERA_WORKER_BINARY", "The tessera executable for upscale workers (default: this one)",
       Text(&C::worker_binary)},
      {"model_dir", "TESSERA_MODEL_DIR", "Installed models (default: ~/.cache/tessera/models)", Text(&C::model_dir)},
      {"default_model", "TESSERA_DEFAULT_MODEL", "Model for upscale jobs that name none", Text(&C::default_model, false)},
      {"upscale_timeout_s", "TESSERA_UPSCALE_TIMEOUT",
       "Seconds a worker may take on one image before it is restarted and the job retried",
       Number(&C::upscale_timeout_s, 1)},
      {"worker_threads", "TESSERA_WORKER_THREADS", "Threads per upscale worker (0: one per core)",
       Integer(&C::worker_threads, 0, 1024)},
      {"max_video_pixels", "TESSERA_MAX_VIDEO_PIXELS",
       "POST /upscale/video: refuse a video whose frames have more pixels than this, before any work",
       Integer(&C::max_video_pixels, 1, 2147483647)},
      {"max_video_frames", "TESSERA_MAX_VIDEO_FRAMES",
       "POST /upscale/video: refuse a video with more frames than this, before any work (0: no limit)",
       Integer(&C::max_video_frames, 0, 2147483647)},
      {"video_segment_timeout_s", "TESSERA_VIDEO_SEGMENT_TIMEOUT",
       "Seconds one segment of a video job may run before it is stopped and fails (0: never)",
       Number(&C::video_segment_timeout_s, 0)},
      {"host_base_url", "HOST_BASE_URL", "Prefix for file_url when behind a reverse proxy, e.g. https://x.example",
       Text(&C::host_base_url)},
      {"retention_days", "RETENTION_DAYS", "Delete finished jobs and their files after this many days (0: never)",
       Number(&C::retention_days, 0)},
      {"token", "TESSERA_TOKEN", "Bearer token every request must carry (required beyond loopback)", Text(&C::token)},
      {"rate_limit_per_minute", "TESSERA_RATE_LIMIT", "Requests per minute per client (0: no limit)",
       Number(&C::rate_limit_per_minute, 0)},
      {"rate_limit_burst", "TESSERA_RATE_BURST", "Requests a client may send at once", Number(&C::rate_limit_burst, 1)},
      {"max_body_mb", "TESSERA_MAX_BODY_MB", "Largest POST /upscale body, MiB (counted as received, chunked too; streamed to disk)",
       Number(&C::max_body_mb, 0.001)},
      {"restart_policy", "TESSERA_RESTART_POLICY", "Jobs found running at start: requeue or fail",
       OneOf(&C::restart_policy, {"requeue", "fail"})},
      {"drain_timeout_s", "TESSERA_DRAIN_TIMEOUT",
       "On SIGTERM, seconds running jobs may take to finish before they are handed back to the queue (0: at once)",
       Number(&C::drain_timeout_s, 0)},
      {"max_attempts", "TESSERA_MAX_ATTEMPTS", "Starts of a job before its worker's failures fail it",
       Integer(&C::max_attempts, 1, 100)},
      {"webhook_secret", "TESSERA_WEBHOOK_SECRET", "Key of the X-Tessera-Signature HMAC-SHA256 on webhook calls",
       Text(&C::webhook_secret)},
      {"webhook_max_attempts", "TESSERA_WEBHOOK_ATTEMPTS", "Tries per webhook call",
       Integer(&C::webhook_max_attempts, 1, 100)},
      {"webhook_backoff_s", "TESSERA_WEBHOOK_BACKOFF", "First retry delay, doubled each time",
       Number(&C::webhook_backoff_s, 0)},
      {"default_generate_seconds", "TESSERA_DEFAULT_GENERATE_SECONDS",
       "ETA of a generate job before a lane has history", Number(&C::default_generate_seconds, 0)},
      {"default_upscale_seconds", "TESSERA_DEFAULT_UPSCALE_SECONDS", "ETA of an upscale job before a lane has history",
       Number(&C::default_upscale_seconds, 0)},
      {"http_threads", "TESSERA_HTTP_THREADS", "Threads running route handlers (connections wait on the event loop)",
       Integer(&C::http_threads, 1, 1024)},
      {"http_io_threads", "TESSERA_HTTP_IO_THREADS", "Event-loop threads carrying every HTTP connection",
       Integer(&C::http_io_threads, 1, 64)},
      {"header_timeout_s", "TESSERA_HEADER_TIMEOUT", "Seconds a client has to send a whole request head",
       Number(&C::header_timeout_s, 0.1)},
      {"body_timeout_s", "TESSERA_BODY_TIMEOUT", "Seconds a client has to send each 64 KiB of a body (or its end)",
       Number(&C::body_timeout_s, 0.1)},
      {"idle_timeout_s", "TESSERA_IDLE_TIMEOUT", "Seconds an idle keep-alive connection stays open",
       Number(&C::idle_timeout_s, 0.1)},
      {"write_timeout_s", "TESSERA_WRITE_TIMEOUT", "Seconds each write of an answer may take before the client is dropped",
       Number(&C::write_timeout_s, 0.1)},
      {"max_connections", "TESSERA_MAX_CONNECTIONS", "Open connections at once, all clients (beyond: 503)",
       Integer(&C::max_connections, 1, 1000000)},
      {"max_connections_per_client", "TESSERA_MAX_CONNECTIONS_PER_CLIENT",
       "Open connections at once from one client address (beyond: 503)",
       Integer(&C::max_connections_per_client, 1, 1000000)},
      {"max_event_subscribers", "TESSERA_MAX_EVENT_SUBSCRIBERS", "GET /events streams at once (beyond: 503)",
       Integer(&C::max_event_subscribers, 1, 1000000)},
      {"event_queue_per_client", "TESSERA_EVENT_QUEUE", "Events waiting for one /events client before it is dropped as too slow",
       Integer(&C::event_queue_per_client, 1, 1000000)},
      {"event_replay", "TESSERA_EVENT_REPLAY",
       "Last events kept for /events clients that reconnect with Last-Event-ID (0: no resume)",
       Integer(&C::event_replay, 0, 1000000)},
      {"max_json_body_kb", "TESSERA_MAX_JSON_BODY_KB", "Largest body of the JSON routes (read in memory), KiB",
       Number(&C::max_json_body_kb, 1)},
      {"node_id", "TESSERA_NODE_ID",
       "This server's name in its temporary files, so start-up clean-up removes only its own (default: the host name)",
       [](C& c, const std::string& v) {
         for (char ch : v) {
           bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                     ch == '-' || ch == '.';
           if (!ok) return InvalidError("\"" + v + "\" may use letters, digits, '.', '_' and '-' only");
         }
         c.node_id = v;
         return Status::Ok();
       }},
      {"shared_dir", "TESSERA_SHARED_DIR",
       "A directory every node of a cluster names (NFS): uploads, image batches and results go under it "
       "(default: under the data directory)",
       Text(&C::shared_dir)},
      {"advertise_url", "TESSERA_ADVERTISE_URL",
       "How other nodes and clients reach this server, e.g. http://gpu-a:8080 (default: http://HOST:PORT)",
       Text(&C::advertise_url)},
      {"node_lease_s", "TESSERA_NODE_LEASE",
       "Seconds a node of a cluster may stay silent before the others take its running jobs back",
       Number(&C::node_lease_s, 1)},
      {"batch_max_retries", "BATCH_MAX_RETRIES", "Retries of a failed batch image, automatic or on request",
       Integer(&C::batch_max_retries, 0, 100)},
      {"batch_parallel_workers", "BATCH_PARALLEL_WORKERS", "Images of one batch in flight at once (0: as many as lanes)",
       Integer(&C::batch_parallel_workers, 0, 10000)},
      {"batch_retry_delay_s", "BATCH_RETRY_DELAY", "Seconds before a failed batch image is retried automatically",
       Number(&C::batch_retry_delay_s, 0)},
      {"max_upload_mb", "TESSERA_MAX_UPLOAD_MB", "Largest batch upload, MiB (counted as received; streamed to disk)",
       Number(&C::max_upload_mb, 0.001)},
  };
  return settings;
}

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> environment;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string text(*entry);
    size_t equals = text.find('=');
    if (equals != std::string::npos) environment[text.substr(0, equals)] = text.substr(equals + 1);
  }
  return environment;
}

Result<ServerConfig> LoadServerConfig(const std::map<std::string, std::string>& flags,
                                      const std::map<std::string, std::string>& environment,
                                      std::string config_path) {
  ServerConfig config;
  const auto& settings = ServerSettings();
  auto find = [&](const std::string& key) -> const SettingSpec* {
    for (const auto& s : settings) {
      if (s.key == key) return &s;
    }
    return nullptr;
  };
  auto apply = [&](const SettingSpec& spec, const std::string& value, const std::string& source) -> Status {
    Status applied = spec.apply(config, value);
    if (!applied.ok()) return InvalidError(spec.key + " (from " + source + "): " + applied.message());
    return Status::Ok();
  };

  if (config_path.empty()) {
    if (auto it = environment.find("TESSERA_CONFIG"); it != environment.end()) config_path = it->second;
  }
  if (!config_path.empty()) {
    std::ifstream in(config_path);
    if (!in) return InvalidError("cannot read the config file " + config_path);
    std::stringstream text;
    text << in.rdbuf();
    nlohmann::json document = nlohmann::json::parse(text.str(), nullptr, false);
    if (document.is_discarded() || !document.is_object()) {
      return InvalidError("config file " + config_path + " is not a JSON object");
    }
    for (auto& [key, value] : document.items()) {
      const SettingSpec* spec = find(key);
      if (spec == nullptr) return InvalidError("config file " + config_path + ": unknown setting \"" + key + "\"");
      std::string as_text;
      if (value.is_string()) {
        as_text = value.get<std::string>();
      } else if (value.is_number() || value.is_boolean()) {
        as_text = value.dump();
      } else {
        return InvalidError("config file " + config_path + ": " + key + " must be a string or a number");
      }
      if (Status s = apply(*spec, as_text, "config file " + config_path); !s.ok()) return s;
    }
  }
  for (const auto& spec : settings) {
    if (spec.env.empty()) continue;
    auto it = environment.find(spec.env);
    if (it == environment.end()) continue;
    if (Status s = apply(spec, it->second, "environment " + spec.env); !s.ok()) return s;
  }
  for (const auto& [key, value] : flags) {
    const SettingSpec* spec = find(key);
    if (spec == nullptr) return InvalidError("unknown setting " + key);
    std::string flag = "--" + key;
    for (char& c : flag) {
      if (c == '_') c = '-';
    }
    if (Status s = apply(*spec, value, "flag " + flag); !s.ok()) return s;
  }
  if (Status valid = ValidateServerConfig(config); !valid.ok()) return valid;
  return config;
}

Status ValidateServerConfig(const ServerConfig& config) {
  if (!IsLoopback(config.host) && config.token.empty()) {
    return InvalidError("host " + config.host +
                        " is reachable from other machines: set a token (TESSERA_TOKEN or --token) first");
  }
  if (!config.host_base_url.empty() && config.host_base_url.rfind("http://", 0) != 0 &&
      config.host_base_url.rfind("https://", 0) != 0) {
    return InvalidError("host_base_url must start with http:// or https://, got " + config.host_base_url);
  }
  return Status::Ok();
}

}  // namespace tessera::server
