// A real `tessera worker` child for integration tests, with its stderr captured
// to a temporary file so tests can read the log lines it wrote.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "test_images.h"
#include "worker/worker_process.h"

namespace tessera::test {

class WorkerSession {
 public:
  explicit WorkerSession(std::vector<std::string> args = {"--keep-alive"}) {
    char path[] = "/tmp/tessera-worker-stderr-XXXXXX";
    int fd = ::mkstemp(path);
    ::close(fd);
    stderr_path_ = path;
    auto started = worker::WorkerProcess::Start(TesseraBinary(), args, stderr_path_);
    EXPECT_TRUE(started.ok()) << started.status().ToString();
    if (started.ok()) worker_.emplace(std::move(started).value());
  }
  ~WorkerSession() { std::remove(stderr_path_.c_str()); }

  worker::WorkerProcess& worker() { return *worker_; }
  pid_t pid() { return worker_->process().pid(); }

  protocol::Response Call(const std::vector<uint8_t>& frame) {
    auto r = worker_->Call(frame);
    EXPECT_TRUE(r.ok()) << r.status().ToString() << "\nworker stderr:\n" << Stderr();
    return r.ok() ? std::move(r).value() : protocol::Response{};
  }

  // Closes stdin; returns the exit code (or -1 when the worker died by a signal).
  int Finish() {
    auto status = worker_->Finish();
    if (!status.ok() || !WIFEXITED(*status)) return -1;
    return WEXITSTATUS(*status);
  }

  std::string Stderr() const {
    std::ifstream in(stderr_path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  // Waits until the worker's log holds `text`, woken by the kernel each time the
  // log file is written (inotify), not by a clock; false after `timeout`.
  bool WaitForLog(const std::string& text, std::chrono::milliseconds timeout = std::chrono::seconds(60)) const {
    int watcher = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (watcher < 0) return false;
    ::inotify_add_watch(watcher, stderr_path_.c_str(), IN_MODIFY);  // before the first look: no lost write
    auto until = std::chrono::steady_clock::now() + timeout;
    bool found = false;
    while (!(found = Stderr().find(text) != std::string::npos)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd entry{watcher, POLLIN, 0};
      if (::poll(&entry, 1, static_cast<int>(left.count())) <= 0) continue;
      char events[4096];
      while (::read(watcher, events, sizeof events) > 0) {
      }
    }
    ::close(watcher);
    return found;
  }

  // VmRSS of the worker process, in bytes.
  uint64_t RssBytes() {
    std::ifstream in("/proc/" + std::to_string(pid()) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
    }
    return 0;
  }

  // Every value of `key=` in the worker's log lines of event `event`.
  std::vector<std::string> LogValues(const std::string& event, const std::string& key) const {
    std::vector<std::string> values;
    std::istringstream lines(Stderr());
    std::string line;
    while (std::getline(lines, line)) {
      if (line.find(" event=" + event + " ") == std::string::npos) continue;
      size_t at = line.find(" " + key + "=");
      if (at == std::string::npos) continue;
      size_t start = at + key.size() + 2;
      values.push_back(line.substr(start, line.find(' ', start) - start));
    }
    return values;
  }

 private:
  std::string stderr_path_;
  std::optional<worker::WorkerProcess> worker_;
};

inline uint32_t Status(const protocol::Response& r) { return r.status; }
inline uint32_t Code(protocol::WireStatus s) { return static_cast<uint32_t>(s); }

}  // namespace tessera::test
