// The job server under load (issue 5, "Measure"): a real `tessera serve` on
// loopback, measured from outside, the way a client meets it.
//
//   make bench-server
//   build/bench/server_bench [--binary PATH] [--old-binary PATH] [--only front|start|queue]
//                            [--queue-jobs 10000] [--start-jobs 50] [--submit-threads 4]
//                            [--wrk-threads 2] [--wrk-connections 64] [--wrk-seconds 10]
//                            [--front-clients 1000] [--keep] [--pin]
//                            [--store 'postgresql:///{database}?host=/socket/dir&user=postgres']
//
// Four measurements, each printed as a table:
//   front   the HTTP front (issue 16), for --binary and, in the same run, for
//           --old-binary (e.g. a build of 320ac16, the cpp-httplib server): GET
//           /status/{id} with wrk at 64 and --front-clients connections, with 2
//           jobs and with --queue-jobs queued; GET /health p99 with
//           --front-clients GET /events subscribers connected; the server's
//           VmRSS/VmHWM with --front-clients idle keep-alive connections, then
//           with --front-clients event subscribers. Each wrk row also gives the
//           server's CPU time per request (/proc/PID/stat around the run): on 2
//           cores wrk and the loopback take half the machine, so req/s bounds
//           what both sides do together and CPU per request what the server costs.
//           --pin runs the server on CPU 1 and wrk on CPU 0 (taskset), so that
//           req/s is one core's worth of server.
//   status  GET /status/{id} with wrk (--latency): requests/s and latency
//           percentiles, once with a nearly empty store (the id of the one queued
//           job) and once with the big queue (a job near its back).
//   start   submit-to-start latency on an idle lane: from sending POST /generate
//           to the job's "running" event on GET /events, one job at a time, each
//           finished before the next is sent.
//   queue   --queue-jobs jobs submitted by several keep-alive clients: jobs/s, the
//           server's VmRSS/VmHWM (/proc/PID/status) before and after, and the time
//           to look them up, cancel them all and delete them all.
//
// The generators do no work. `sleep 3600` holds the one lane, so the queue only
// grows; `true` exits at once (its job then ends in error, having written no
// video, which does not change when it started). The rate limiter is off. The
// server runs with its defaults otherwise (--http-threads 8), on one CPU lane.
// --store runs every server on PostgreSQL instead of SQLite: each server gets a
// fresh database of its own (CREATE DATABASE through the same URL with
// {database} = postgres), so that no server sees another's jobs.
// Nothing here asserts a time: the numbers are for reading.
#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "store/pg_connection.h"
#include "util/subprocess.h"

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct BenchOptions {
  std::string binary = TESSERA_BINARY;
  std::string store;  // a postgresql:// URL with {database}; empty: SQLite
  int queue_jobs = 10000;
  int start_jobs = 50;
  int submit_threads = 4;
  int wrk_threads = 2;
  int wrk_connections = 64;
  int wrk_seconds = 10;
  std::string old_binary;  // front: the server to compare with, in the same run
  std::string only;        // front | start | queue; empty: all
  int front_clients = 1000;
  bool keep = false;  // keep the data folders (server logs, SQLite) for a look afterwards
  // Server on CPU 1, wrk on CPU 0 (taskset): each side has one core of its own,
  // so req/s measures the server rather than who wins the shared cores.
  bool pin = false;
};

// Every failure ends the run with a message; main() catches it so that the
// servers are stopped and the folders removed on the way out.
[[noreturn]] void Fail(const std::string& message) { throw std::runtime_error(message); }

double MsBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// Nearest-rank percentile of unsorted samples; 0 when there are none.
double Percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  size_t rank = static_cast<size_t>(p / 100.0 * samples.size() + 0.999999);
  return samples[std::clamp<size_t>(rank, 1, samples.size()) - 1];
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// VmRSS and VmHWM of another process, in MiB (0 when unreadable).
struct MemorySample {
  double rss_mib = 0;
  double hwm_mib = 0;
};

MemorySample ReadMemory(pid_t pid) {
  MemorySample sample;
  std::istringstream status(ReadFile("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(status, line)) {
    double kib = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %lf kB", &kib) == 1) sample.rss_mib = kib / 1024;
    if (std::sscanf(line.c_str(), "VmHWM: %lf kB", &kib) == 1) sample.hwm_mib = kib / 1024;
  }
  return sample;
}

// `url` with its {database} replaced by `name`.
std::string WithDatabase(const std::string& url, const std::string& name) {
  std::string result = url;
  size_t at = result.find("{database}");
  if (at == std::string::npos) Fail("--store needs a {database} placeholder in its URL");
  return result.replace(at, std::string("{database}").size(), name);
}

// A new, empty database on the --store server; its URL.
std::string FreshDatabase(const std::string& url) {
  static int made = 0;
  std::string name = "server_bench_" + std::to_string(::getpid()) + "_" + std::to_string(++made);
  auto admin = tessera::store::pg::PgConnection::Connect(WithDatabase(url, "postgres"));
  if (!admin.ok()) Fail(admin.status().ToString());
  if (auto s = (*admin)->ExecScript("create a database", "CREATE DATABASE " + name); !s.ok()) Fail(s.ToString());
  return WithDatabase(url, name);
}

// A `tessera serve` on 127.0.0.1 with its own data folder, stopped with SIGINT
// when this object goes.
class ServerUnderTest {
 public:
  ServerUnderTest(const BenchOptions& options, const std::string& name, const std::string& generator,
                  const std::string& binary = "", const std::vector<std::string>& extra_args = {}) {
    char pattern[] = "/tmp/tessera-bench-XXXXXX";
    if (!::mkdtemp(pattern)) Fail("mkdtemp failed");
    dir_ = std::string(pattern) + "/" + name;
    keep_ = options.keep;
    std::filesystem::create_directories(dir_ + "/ckpt");
    std::string port_file = dir_ + "/port";

    tessera::SubprocessOptions spawn;
    const std::string& program = binary.empty() ? options.binary : binary;
    spawn.argv = {program, "serve", "--port", "0", "--port-file", port_file, "--data-dir", dir_ + "/data",
                  "--wan-ckpt-dir", dir_ + "/ckpt", "--cpu-lanes", "1", "--rate-limit-per-minute", "0",
                  "--generate-command", generator, "--log-format", "kv"};
    // taskset execs the server: the pid stays the server's.
    if (options.pin) spawn.argv.insert(spawn.argv.begin(), {"taskset", "-c", "1"});
    spawn.argv.insert(spawn.argv.end(), extra_args.begin(), extra_args.end());
    if (!options.store.empty()) {
      spawn.argv.push_back("--store");
      spawn.argv.push_back(FreshDatabase(options.store));
    }
    // One CPU lane whatever this machine has: an empty GPU_IDS defers to
    // NVIDIA_VISIBLE_DEVICES, and "void" there means no GPU (nvidia-smi is not asked).
    spawn.extra_env = {{"GPU_IDS", ""}, {"NVIDIA_VISIBLE_DEVICES", "void"}};
    spawn.pipe_stdin = false;
    spawn.pipe_stdout = false;
    spawn.stderr_path = dir_ + "/server-stderr.log";
    spawn.kill_with_parent = true;  // a crashed bench leaves no server behind
    auto started = tessera::Subprocess::Start(spawn);
    if (!started.ok()) Fail("cannot start " + program + ": " + started.status().message());
    process_.emplace(std::move(started).value());

    // The server writes its port once it listens.
    auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline) {
      std::string text = ReadFile(port_file);
      if (text.find('\n') != std::string::npos) {
        port_ = std::atoi(text.c_str());
        break;
      }
      if (process_->TryWait()) {
        process_.reset();
        Fail("tessera serve exited before listening:\n" + ReadFile(dir_ + "/server-stderr.log"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (port_ <= 0) Fail("tessera serve wrote no port within 60 s");
  }

  ~ServerUnderTest() {
    if (process_) {
      process_->Signal(SIGINT);  // at once: SIGTERM would drain (wait for running jobs)
      (void)process_->Wait();
    }
    std::error_code ignored;
    if (!keep_) std::filesystem::remove_all(std::filesystem::path(dir_).parent_path(), ignored);
  }

  int port() const { return port_; }
  pid_t pid() const { return process_->pid(); }
  const std::string& dir() const { return dir_; }
  MemorySample Memory() const { return ReadMemory(pid()); }

  std::unique_ptr<httplib::Client> Client() const {
    auto client = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client->set_keep_alive(true);
    // Headers and body go out in separate writes: without this, Nagle holds the
    // body until the server's delayed ACK (~40 ms), which measures this client.
    client->set_tcp_nodelay(true);
    client->set_connection_timeout(5, 0);
    client->set_read_timeout(600, 0);  // cancelling 10 000 jobs in one request takes a while
    return client;
  }

 private:
  std::string dir_;
  bool keep_ = false;
  std::optional<tessera::Subprocess> process_;
  int port_ = 0;
};

constexpr const char* kPrompt = "server bench";

// POST /generate; the new job's id, or a failure naming the answer.
std::string Submit(httplib::Client& client) {
  json body = {{"prompt", kPrompt}, {"size", "1280x720"}};
  auto answer = client.Post("/generate", body.dump(), "application/json");
  if (!answer) Fail("POST /generate: " + httplib::to_string(answer.error()));
  if (answer->status != 202) Fail("POST /generate answered " + std::to_string(answer->status) + ": " + answer->body);
  return json::parse(answer->body).at("id").get<std::string>();
}

// ---- wrk -------------------------------------------------------------------

struct WrkResult {
  double requests_per_s = 0;
  std::map<int, double> latency_ms;  // percentile (50, 75, 90, 99) -> ms
  double avg_ms = 0;
  double max_ms = 0;
  long requests = 0;
  long non_2xx = 0;
  // The server's CPU time (user + system) per answered request during the run:
  // what a request costs the server, whatever else shares the cores. With wrk
  // on the same 2 cores, req/s measures wrk and the loopback as much as the
  // server; this does not. Negative when not sampled.
  double server_cpu_us_per_request = -1;
  std::string socket_errors;  // wrk's own line, when it printed one
  std::string raw;
};

// "812.00us", "1.27ms", "2.01s", "1.00m" -> milliseconds.
double WrkDurationMs(const std::string& text) {
  double value = std::atof(text.c_str());
  if (text.ends_with("us")) return value / 1000;
  if (text.ends_with("ms")) return value;
  if (text.ends_with("s")) return value * 1000;
  if (text.ends_with("m")) return value * 60000;
  if (text.ends_with("h")) return value * 3600000;
  return value;
}

// User + system CPU seconds a process has used so far (/proc/PID/stat).
double ProcessCpuSeconds(pid_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  size_t after_name = text.rfind(')');  // the command name may hold spaces
  if (after_name == std::string::npos) return 0;
  std::istringstream fields(text.substr(after_name + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int index = 3; fields >> field; ++index) {  // field 3 is the state
    if (index == 14) utime = std::stoull(field);
    if (index == 15) {
      stime = std::stoull(field);
      break;
    }
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// `connections`: 0 for --wrk-connections. `tolerant`: a server that answers
// nothing gives an empty result instead of ending the run (the old server
// under 1000 event streams). `server_pid`: the server whose CPU time per
// request is sampled around the run (0: none).
WrkResult RunWrk(const BenchOptions& options, const std::string& url, int connections = 0, bool tolerant = false,
                 pid_t server_pid = 0) {
  if (connections <= 0) connections = options.wrk_connections;
  std::string command = std::string(options.pin ? "taskset -c 0 " : "") + "wrk -t" +
                        std::to_string(options.wrk_threads) + " -c" + std::to_string(connections) + " -d" +
                        std::to_string(options.wrk_seconds) + "s --timeout 5s --latency " + url + " 2>&1";
  double cpu_before = server_pid > 0 ? ProcessCpuSeconds(server_pid) : 0;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) Fail("cannot run wrk");
  WrkResult result;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) result.raw.append(buffer, n);
  int status = ::pclose(pipe);
  double cpu_after = server_pid > 0 ? ProcessCpuSeconds(server_pid) : 0;
  if (status != 0 && !tolerant) Fail("wrk failed (" + command + "):\n" + result.raw);

  std::istringstream lines(result.raw);
  std::string line;
  bool in_distribution = false;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string first, second, third, fourth;
    words >> first >> second >> third >> fourth;
    if (first == "Latency" && second == "Distribution") {
      in_distribution = true;
    } else if (in_distribution && first.ends_with("%")) {
      result.latency_ms[std::atoi(first.c_str())] = WrkDurationMs(second);
    } else if (first == "Latency") {  // Thread Stats: Avg Stdev Max
      result.avg_ms = WrkDurationMs(second);
      result.max_ms = WrkDurationMs(fourth);
    } else if (second == "requests" && third == "in") {
      in_distribution = false;
      result.requests = std::atol(first.c_str());
    } else if (first == "Requests/sec:") {
      result.requests_per_s = std::atof(second.c_str());
    } else if (first == "Non-2xx") {
      result.non_2xx = std::atol(line.substr(line.find(':') + 1).c_str());
    } else if (first == "Socket") {
      result.socket_errors = line.substr(line.find_first_not_of(' '));
    }
  }
  if (server_pid > 0 && result.requests > 0) {
    result.server_cpu_us_per_request = (cpu_after - cpu_before) * 1e6 / static_cast<double>(result.requests);
  }
  if (result.requests_per_s <= 0 || result.latency_ms.count(99) == 0) {
    if (!tolerant) Fail("cannot read wrk's output:\n" + result.raw);
    for (int p : {50, 75, 90, 99}) result.latency_ms.emplace(p, 0);
  }
  return result;
}

void PrintWrkTable(const BenchOptions& options, const std::vector<std::pair<std::string, WrkResult>>& rows,
                   const std::string& title = "") {
  if (title.empty()) {
    std::printf("\nGET /status/{id} — wrk -t%d -c%d -d%ds --latency\n", options.wrk_threads, options.wrk_connections,
                options.wrk_seconds);
  } else {
    std::printf("\n%s\n", title.c_str());
  }
  std::printf("  %-34s %10s %9s %9s %9s %9s %9s %9s %8s %11s\n", "store", "req/s", "avg ms", "p50 ms", "p75 ms",
              "p90 ms", "p99 ms", "max ms", "non-2xx", "srv us/req");
  for (const auto& [name, r] : rows) {
    char cpu[32] = "-";
    if (r.server_cpu_us_per_request >= 0) std::snprintf(cpu, sizeof cpu, "%.1f", r.server_cpu_us_per_request);
    std::printf("  %-34s %10.0f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %8ld %11s\n", name.c_str(), r.requests_per_s,
                r.avg_ms, r.latency_ms.at(50), r.latency_ms.at(75), r.latency_ms.at(90), r.latency_ms.at(99), r.max_ms,
                r.non_2xx, cpu);
    if (!r.socket_errors.empty()) std::printf("  %-34s %s\n", "", r.socket_errors.c_str());
  }
}

// ---- submit-to-start over GET /events ----------------------------------------

// Milliseconds since the epoch of the server's "2025-01-02T12:30:00.123Z"; -1 if none.
int64_t ParseTimestampMs(const json& value) {
  if (!value.is_string()) return -1;
  std::tm utc{};
  int ms = 0;
  if (std::sscanf(value.get<std::string>().c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &utc.tm_year, &utc.tm_mon, &utc.tm_mday,
                  &utc.tm_hour, &utc.tm_min, &utc.tm_sec, &ms) != 7) {
    return -1;
  }
  utc.tm_year -= 1900;
  utc.tm_mon -= 1;
  return static_cast<int64_t>(::timegm(&utc)) * 1000 + ms;
}

bool IsFinal(const std::string& status) { return status == "success" || status == "error" || status == "canceled"; }

// Follows GET /events (every job) on its own connection and notes when each
// job's statuses first arrive.
class EventFollower {
 public:
  explicit EventFollower(const ServerUnderTest& server) : client_(server.Client()) {
    client_->set_read_timeout(3600, 0);
    thread_ = std::thread([this] {
      client_->Get("/events", [this](const char* data, size_t length) {
        if (stopping_) return false;
        buffer_.append(data, length);
        for (size_t end; (end = buffer_.find("\n\n")) != std::string::npos;) {
          Consume(buffer_.substr(0, end));
          buffer_.erase(0, end + 2);
        }
        return true;
      });
    });
  }
  // Ends the stream: stop() shuts the socket of the request in flight; failing
  // that, the server's next keep-alive comment (every 15 s) meets stopping_.
  ~EventFollower() {
    stopping_ = true;
    client_->stop();
    thread_.join();
  }

  struct Seen {
    std::map<std::string, Clock::time_point> first_at;  // status -> when it first arrived
    json final_view;                                    // the job's last event, once finished
  };

  // The job's record once a final status arrived, or nullopt after `timeout`.
  std::optional<Seen> WaitFinished(const std::string& id, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    bool done = changed_.wait_for(lock, timeout, [&] { return jobs_.count(id) && !jobs_[id].final_view.is_null(); });
    if (!done) return std::nullopt;
    return jobs_[id];
  }

 private:
  void Consume(const std::string& frame) {
    Clock::time_point now = Clock::now();
    std::istringstream lines(frame);
    std::string line;
    while (std::getline(lines, line)) {
      if (!line.starts_with("data: ")) continue;
      json view = json::parse(line.substr(6), nullptr, false);
      if (!view.is_object()) continue;
      std::string id = view.value("id", ""), status = view.value("status", "");
      std::lock_guard lock(mutex_);
      Seen& seen = jobs_[id];
      seen.first_at.emplace(status, now);
      if (IsFinal(status)) seen.final_view = view;
      changed_.notify_all();
    }
  }

  std::unique_ptr<httplib::Client> client_;
  std::atomic<bool> stopping_{false};
  std::string buffer_;  // the reader thread's only
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, Seen> jobs_;
  std::thread thread_;
};

void MeasureSubmitToStart(const BenchOptions& options) {
  ServerUnderTest server(options, "start", "true");
  EventFollower events(server);
  auto client = server.Client();

  // The stream is live once a job's events come through it; until then a job may
  // finish unseen, so warm up until one is seen.
  bool live = false;
  for (int attempt = 0; attempt < 20 && !live; ++attempt) {
    live = events.WaitFinished(Submit(*client), std::chrono::seconds(2)).has_value();
  }
  if (!live) Fail("GET /events delivered no event in 40 s");

  std::vector<double> post_ms, start_ms, finish_ms, server_start_ms;
  int missing_running = 0;
  for (int i = 0; i < options.start_jobs; ++i) {
    Clock::time_point sent = Clock::now();
    std::string id = Submit(*client);
    Clock::time_point answered = Clock::now();
    auto seen = events.WaitFinished(id, std::chrono::seconds(60));
    if (!seen) Fail("job " + id + " did not finish within 60 s");
    post_ms.push_back(MsBetween(sent, answered));
    for (const auto& [status, at] : seen->first_at) {
      if (IsFinal(status)) finish_ms.push_back(MsBetween(sent, at));
    }
    auto running = seen->first_at.find("running");
    if (running == seen->first_at.end()) {
      ++missing_running;
    } else {
      start_ms.push_back(MsBetween(sent, running->second));
    }
    int64_t created = ParseTimestampMs(seen->final_view["created_at"]);
    int64_t started = ParseTimestampMs(seen->final_view["started_at"]);
    if (created > 0 && started > 0) server_start_ms.push_back(static_cast<double>(started - created));
  }

  std::printf("\nSubmit-to-start, idle lane, generator `true`, %d jobs one after another\n", options.start_jobs);
  std::printf("  %-52s %8s %8s %8s %8s\n", "interval", "p50 ms", "p95 ms", "max ms", "samples");
  auto row = [](const char* name, const std::vector<double>& v) {
    std::printf("  %-52s %8.2f %8.2f %8.2f %8zu\n", name, Percentile(v, 50), Percentile(v, 95), Percentile(v, 100),
                v.size());
  };
  row("POST /generate sent -> 202 received", post_ms);
  row("POST /generate sent -> \"running\" event received", start_ms);
  row("POST /generate sent -> final event received", finish_ms);
  row("server's own created_at -> started_at (ms clock)", server_start_ms);
  if (missing_running > 0) std::printf("  %d jobs finished without a \"running\" event\n", missing_running);
}

// ---- the big queue, and /status against it -----------------------------------

void PrintMemory(const char* when, const MemorySample& m) {
  std::printf("  %-52s %10.1f %10.1f\n", when, m.rss_mib, m.hwm_mib);
}

// Submits --queue-jobs jobs from --submit-threads keep-alive clients; their ids
// in submission slots, every POST's latency; returns the seconds it took.
double SubmitMany(const BenchOptions& options, const ServerUnderTest& server, std::vector<std::string>* ids,
                  std::vector<double>* all_latencies) {
  ids->assign(options.queue_jobs, "");
  std::vector<std::vector<double>> latencies(options.submit_threads);
  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  std::string failure;
  std::mutex failure_mutex;
  Clock::time_point begin = Clock::now();
  std::vector<std::thread> submitters;
  for (int t = 0; t < options.submit_threads; ++t) {
    submitters.emplace_back([&, t] {
      auto own = server.Client();
      try {
        for (int i; !failed && (i = next++) < options.queue_jobs;) {
          Clock::time_point sent = Clock::now();
          (*ids)[i] = Submit(*own);
          latencies[t].push_back(MsBetween(sent, Clock::now()));
        }
      } catch (const std::exception& error) {
        std::lock_guard lock(failure_mutex);
        failure = error.what();
        failed = true;
      }
    });
  }
  for (auto& thread : submitters) thread.join();
  double seconds = MsBetween(begin, Clock::now()) / 1000;
  if (failed) Fail(failure);
  for (const auto& own : latencies) all_latencies->insert(all_latencies->end(), own.begin(), own.end());
  return seconds;
}

void MeasureQueue(const BenchOptions& options) {
  ServerUnderTest server(options, "queue", "sleep 3600");
  auto client = server.Client();
  std::vector<std::pair<std::string, MemorySample>> memory;
  memory.emplace_back("started, empty store", server.Memory());

  // Nearly empty: one job holds the lane, one waits; ask for the waiting one.
  Submit(*client);
  std::string second = Submit(*client);
  std::vector<std::pair<std::string, WrkResult>> wrk_rows;
  std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  wrk_rows.emplace_back("2 jobs (queue position 1)",
                        RunWrk(options, base + "/status/" + second, 0, false, server.pid()));
  memory.emplace_back("after wrk, 2 jobs", server.Memory());

  // The queue: several clients, each on its own keep-alive connection.
  std::vector<std::string> ids;
  std::vector<double> all_latencies;
  double submit_s = SubmitMany(options, server, &ids, &all_latencies);
  memory.emplace_back("after submitting " + std::to_string(options.queue_jobs) + " jobs", server.Memory());

  // Near the back of the queue: its position is worked out on every request.
  int back = std::max(0, options.queue_jobs - 10);
  wrk_rows.emplace_back(std::to_string(options.queue_jobs + 2) + " jobs (job #" + std::to_string(back + 3) + ")",
                        RunWrk(options, base + "/status/" + ids[back], 0, false, server.pid()));
  memory.emplace_back("after wrk, full queue", server.Memory());

  // Look-ups and deletes, each one request.
  struct Timed {
    std::string what;
    double ms;
    std::string outcome;
  };
  std::vector<Timed> timed;
  auto time_request = [&](const std::string& what, auto&& call, auto&& describe) {
    Clock::time_point sent = Clock::now();
    auto answer = call();
    double ms = MsBetween(sent, Clock::now());
    if (!answer) Fail(what + ": " + httplib::to_string(answer.error()));
    if (answer->status != 200) Fail(what + " answered " + std::to_string(answer->status) + ": " + answer->body);
    timed.push_back({what, ms, describe(answer->body)});
  };
  auto count_of = [](const char* key) {
    return [key](const std::string& body) { return std::to_string(json::parse(body).at(key).size()) + " " + key; };
  };
  time_request(
      "GET /status/{id} (job near the back)", [&] { return client->Get("/status/" + ids[back]); },
      [](const std::string& body) {
        json view = json::parse(body);
        return "status " + view.value("status", "?") + ", queue_position " + view["queue_position"].dump();
      });
  time_request(
      "GET /jobs/lookup?prompt=...&all=true", [&] { return client->Get("/jobs/lookup?prompt=server%20bench&all=true"); },
      count_of("jobs"));
  time_request(
      "GET /metrics", [&] { return client->Get("/metrics"); },
      [](const std::string& body) { return std::to_string(body.size()) + " bytes"; });
  time_request(
      "DELETE /jobs?all=true (cancels)", [&] { return client->Delete("/jobs?all=true"); }, count_of("canceled"));
  time_request(
      "DELETE /jobs?all=true (deletes canceled rows)", [&] { return client->Delete("/jobs?all=true"); },
      count_of("deleted"));
  memory.emplace_back("after deleting every job", server.Memory());

  PrintWrkTable(options, wrk_rows);

  std::printf("\nQueue of %d jobs, generator `sleep 3600` on one lane, %d submitting clients (keep-alive)\n",
              options.queue_jobs, options.submit_threads);
  std::printf("  submitted %d jobs in %.2f s: %.0f jobs/s; POST /generate p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
              options.queue_jobs, submit_s, options.queue_jobs / submit_s, Percentile(all_latencies, 50),
              Percentile(all_latencies, 99), Percentile(all_latencies, 100));
  std::printf("  %-52s %10s %10s\n", "server memory", "VmRSS MiB", "VmHWM MiB");
  for (const auto& [when, sample] : memory) PrintMemory(when.c_str(), sample);
  std::printf("  %-52s %10s  %s\n", "request", "ms", "answer");
  for (const auto& t : timed) std::printf("  %-52s %10.1f  %s\n", t.what.c_str(), t.ms, t.outcome.c_str());
  std::uintmax_t db_bytes = 0;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::error_code ignored;
    auto size = std::filesystem::file_size(server.dir() + "/data/state.db" + suffix, ignored);
    if (!ignored) db_bytes += size;
  }
  std::printf("  SQLite files (state.db, -wal, -shm) at the end: %.1f MiB\n", db_bytes / 1048576.0);
  if (options.keep) std::printf("  data kept in %s\n", server.dir().c_str());
}

// ---- the HTTP front: old and new server in the same run ------------------------

// `count` connections that each sent `request`, held open until destroyed.
class HeldConnections {
 public:
  HeldConnections(int port, int count, const std::string& request) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < count; ++i) {
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) Fail("socket: out of descriptors after " + std::to_string(i));
      if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
          ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
        ::close(fd);
        continue;
      }
      ::fcntl(fd, F_SETFL, O_NONBLOCK);
      fds_.push_back(fd);
      heads_.emplace_back();
    }
  }
  ~HeldConnections() {
    for (int fd : fds_) ::close(fd);
  }
  // How many got the head of an answer within `wait`.
  int WaitAnswered(std::chrono::seconds wait) {
    auto deadline = Clock::now() + wait;
    int answered = 0;
    std::vector<bool> done(fds_.size(), false);
    while (Clock::now() < deadline && answered < static_cast<int>(fds_.size())) {
      std::vector<pollfd> entries;
      std::vector<size_t> which;
      for (size_t i = 0; i < fds_.size(); ++i) {
        if (!done[i]) {
          entries.push_back({fds_[i], POLLIN, 0});
          which.push_back(i);
        }
      }
      if (::poll(entries.data(), entries.size(), 200) <= 0) continue;
      for (size_t k = 0; k < entries.size(); ++k) {
        if (!(entries[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        size_t i = which[k];
        char buffer[4096];
        ssize_t n = ::recv(fds_[i], buffer, sizeof buffer, 0);
        if (n > 0) heads_[i].append(buffer, static_cast<size_t>(n));
        if (n <= 0 || heads_[i].find("\r\n\r\n") != std::string::npos) {
          done[i] = true;
          if (n > 0) ++answered;
        }
      }
    }
    return answered;
  }
  size_t size() const { return fds_.size(); }

 private:
  std::vector<int> fds_;
  std::vector<std::string> heads_;
};

bool HasNewFront(const std::string& binary) {
  FILE* pipe = ::popen((binary + " serve --help 2>&1").c_str(), "r");
  if (!pipe) return false;
  std::string text;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) text.append(buffer, n);
  ::pclose(pipe);
  return text.find("--max-connections-per-client") != std::string::npos;
}

void MeasureFront(const BenchOptions& options, const std::string& binary, const std::string& label) {
  std::vector<std::string> extra;
  if (HasNewFront(binary)) {  // the caps, raised for a bench whose clients are all on 127.0.0.1
    int cap = options.front_clients * 3 + 100;
    extra = {"--max-connections", std::to_string(cap), "--max-connections-per-client", std::to_string(cap),
             "--max-event-subscribers", std::to_string(cap)};
  }
  ServerUnderTest server(options, "front-" + label, "sleep 3600", binary, extra);
  std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  auto client = server.Client();
  Submit(*client);
  std::string second = Submit(*client);
  std::vector<std::pair<std::string, WrkResult>> rows;
  std::vector<int> connection_counts = {64, options.front_clients};
  for (int connections : connection_counts) {
    rows.emplace_back(label + " status, 2 jobs, c" + std::to_string(connections),
                      RunWrk(options, base + "/status/" + second, connections, true, server.pid()));
  }
  std::vector<std::string> ids;
  std::vector<double> latencies;
  double submit_s = SubmitMany(options, server, &ids, &latencies);
  std::string back = ids[std::max(0, options.queue_jobs - 10)];
  for (int connections : connection_counts) {
    rows.emplace_back(
        label + " status, " + std::to_string(options.queue_jobs + 2) + " jobs, c" + std::to_string(connections),
        RunWrk(options, base + "/status/" + back, connections, true, server.pid()));
  }
  MemorySample before = server.Memory();
  int idle_answered = 0;
  MemorySample idle;
  {
    HeldConnections keep_alive(server.port(), options.front_clients, "GET /health HTTP/1.1\r\nHost: bench\r\n\r\n");
    idle_answered = keep_alive.WaitAnswered(std::chrono::seconds(10));
    idle = server.Memory();
  }
  int subscribed = 0;
  MemorySample streaming;
  {
    HeldConnections events(server.port(), options.front_clients, "GET /events HTTP/1.1\r\nHost: bench\r\n\r\n");
    subscribed = events.WaitAnswered(std::chrono::seconds(10));
    streaming = server.Memory();
    rows.emplace_back(label + " health, " + std::to_string(subscribed) + " SSE open, c64",
                      RunWrk(options, base + "/health", 64, true, server.pid()));
  }
  PrintWrkTable(options, rows,
                "HTTP front (" + label + ": " + binary + ") — wrk -t" + std::to_string(options.wrk_threads) + " -d" +
                    std::to_string(options.wrk_seconds) + "s --timeout 5s --latency; " + std::to_string(options.queue_jobs) +
                    " jobs submitted in " + std::to_string(submit_s) + " s");
  std::printf("  %-52s %10s %10s\n", "server memory", "VmRSS MiB", "VmHWM MiB");
  PrintMemory("before the held connections", before);
  PrintMemory((std::to_string(options.front_clients) + " idle keep-alive (" + std::to_string(idle_answered) +
               " answered)").c_str(),
              idle);
  PrintMemory((std::to_string(options.front_clients) + " GET /events (" + std::to_string(subscribed) + " streaming)")
                  .c_str(),
              streaming);
}

BenchOptions ParseOptions(int argc, char** argv) {
  BenchOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Fail(flag + " needs a value");
      return argv[++i];
    };
    auto number = [&]() {
      int n = std::atoi(value().c_str());
      if (n <= 0) Fail(flag + " needs a positive number");
      return n;
    };
    if (flag == "--binary") options.binary = value();
    else if (flag == "--queue-jobs") options.queue_jobs = number();
    else if (flag == "--start-jobs") options.start_jobs = number();
    else if (flag == "--submit-threads") options.submit_threads = number();
    else if (flag == "--wrk-threads") options.wrk_threads = number();
    else if (flag == "--wrk-connections") options.wrk_connections = number();
    else if (flag == "--wrk-seconds") options.wrk_seconds = number();
    else if (flag == "--old-binary") options.old_binary = value();
    else if (flag == "--only") options.only = value();
    else if (flag == "--front-clients") options.front_clients = number();
    else if (flag == "--keep") options.keep = true;
    else if (flag == "--pin") options.pin = true;
    else if (flag == "--store") options.store = value();
    else Fail("unknown flag " + flag + " (see the comment at the top of bench/server_bench.cpp)");
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  rlimit files{};  // thousands of client sockets, plus wrk's
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  try {
    BenchOptions options = ParseOptions(argc, argv);
    if (std::system("command -v wrk >/dev/null 2>&1") != 0) Fail("wrk is not installed (scripts/setup installs it)");
    std::printf("server_bench: %s, %u CPUs seen, client and server on the same machine\n", options.binary.c_str(),
                std::thread::hardware_concurrency());
    std::fflush(stdout);
    if (options.only.empty() || options.only == "front") {
      MeasureFront(options, options.binary, "new");
      if (!options.old_binary.empty()) MeasureFront(options, options.old_binary, "old");
      std::fflush(stdout);
    }
    if (options.only.empty() || options.only == "start") MeasureSubmitToStart(options);
    std::fflush(stdout);
    if (options.only.empty() || options.only == "queue") MeasureQueue(options);
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "server_bench: %s\n", error.what());
    return 1;
  }
}
