// A real `tessera serve` process on loopback for integration tests, with its data
// folder, its stderr captured, and an HTTP client pointed at it.
//
// The server is started with --port 0 and --port-file on a FIFO: the fixture
// blocks on the FIFO until the server has bound its port, so tests never guess a
// port or sleep until the server "should" be up.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "test_images.h"
#include "util/subprocess.h"

namespace tessera::test {

// A temporary folder removed with its contents at the end of the test.
class TempDir {
 public:
  TempDir() {
    char path[] = "/tmp/tessera-test-XXXXXX";
    path_ = ::mkdtemp(path);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::string FakeGeneratorCommand() {
  return std::string("python3 ") + TESSERA_SOURCE_DIR +
         "/tests/fixtures/fake_generate.py --size {width}*{height} --prompt {prompt} --save_file {output}";
}

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

struct ServerOptions {
  std::string data_dir;                       // required: reuse it to restart "the same" server
  std::vector<std::string> args;              // extra `serve` flags
  std::map<std::string, std::string> env;     // extra environment (GPU_IDS, FAKE_GENERATE_...)
  bool use_fake_generator = true;
};

class ServerProcess {
 public:
  explicit ServerProcess(ServerOptions options) : options_(std::move(options)) { Start(); }
  ~ServerProcess() {
    // SIGINT stops at once (running jobs go back to the queue); SIGTERM would
    // drain, waiting up to --drain-timeout-s for a job a test left blocked.
    StopWith(SIGINT);
    // A failed test shows what the server said: an intermittent failure must be
    // diagnosable from the one run that saw it.
    if (::testing::Test::HasFailure()) {
      std::string log = stderr_text();
      if (log.size() > 12000) log = "[...]" + log.substr(log.size() - 12000);
      std::cerr << "---- tessera serve stderr (" << stderr_path_ << ") ----\n" << log << "---- end ----\n";
    }
  }

  int port() const { return port_; }
  pid_t pid() const { return process_ ? process_->pid() : -1; }
  bool started() const { return port_ > 0; }
  std::string stderr_text() const { return ReadWholeFile(stderr_path_); }
  const std::string& data_dir() const { return options_.data_dir; }

  std::unique_ptr<httplib::Client> Client() const {
    auto client = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client->set_read_timeout(120, 0);
    client->set_connection_timeout(5, 0);
    return client;
  }

  // SIGTERM and wait: a clean stop. Returns the wait status (or -1 when not running).
  int Terminate() { return StopWith(SIGTERM); }
  // kill -9: the server gets no chance to tidy up.
  int Kill() { return StopWith(SIGKILL); }
  // Sends `signal` and returns at once (a drain test watches what follows).
  void SendSignal(int signal) {
    if (process_) process_->Signal(signal);
  }
  // Waits up to `timeout` for the server to exit: its wait status, or -1 when it
  // still runs (or was not running). Waits on a pidfd, not on a clock.
  int WaitExit(std::chrono::milliseconds timeout) {
    if (!process_) return -1;
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, process_->pid(), 0));
    if (fd >= 0) {
      pollfd entry{fd, POLLIN, 0};
      int ready = ::poll(&entry, 1, static_cast<int>(timeout.count()));
      ::close(fd);
      if (ready <= 0) return -1;
    }
    auto status = process_->Wait();
    process_.reset();
    port_ = 0;
    return status.ok() ? *status : -1;
  }
  // Waits up to `timeout` until the server's log holds `text` (checked every
  // 20 ms: the log is a file, and this waits on what it says, not on a clock).
  bool WaitForLog(const std::string& text, std::chrono::milliseconds timeout) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (stderr_text().find(text) == std::string::npos) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      ::poll(nullptr, 0, 20);
    }
    return true;
  }

 private:
  void Start() {
    std::filesystem::create_directories(options_.data_dir);
    std::string fifo = options_.data_dir + "/port.fifo";
    ::unlink(fifo.c_str());
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << "mkfifo " << fifo;
    stderr_path_ = options_.data_dir + "/server-stderr-" + std::to_string(++starts_) + ".log";
    std::string ckpt = options_.data_dir + "/ckpt";
    std::filesystem::create_directories(ckpt);

    SubprocessOptions spawn;
    spawn.argv = {TesseraBinary(), "serve", "--port", "0", "--port-file", fifo, "--data-dir", options_.data_dir,
                  "--wan-ckpt-dir", ckpt, "--log-format", "kv"};
    if (options_.use_fake_generator) {
      spawn.argv.push_back("--generate-command");
      spawn.argv.push_back(FakeGeneratorCommand());
    }
    spawn.argv.insert(spawn.argv.end(), options_.args.begin(), options_.args.end());
    spawn.extra_env = options_.env;
    spawn.pipe_stdin = false;
    spawn.pipe_stdout = false;
    spawn.stderr_path = stderr_path_;
    auto started = Subprocess::Start(spawn);
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    process_ = std::make_unique<Subprocess>(std::move(started).value());

    // Wait for the port on the FIFO, or for the server to die trying.
    int fd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    std::string text;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd entry{fd, POLLIN, 0};
      int ready = ::poll(&entry, 1, 200);
      if (ready > 0 && (entry.revents & POLLIN)) {
        char buffer[32];
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n > 0) text.append(buffer, static_cast<size_t>(n));
        if (text.find('\n') != std::string::npos) break;
      }
      int status = 0;
      if (::waitpid(process_->pid(), &status, WNOHANG) == process_->pid()) {
        process_.reset();
        ::close(fd);
        FAIL() << "tessera serve exited before listening:\n" << stderr_text();
      }
    }
    ::close(fd);
    port_ = std::atoi(text.c_str());
    ASSERT_GT(port_, 0) << "no port from tessera serve:\n" << stderr_text();
  }

  int StopWith(int signal) {
    if (!process_) return -1;
    process_->Signal(signal);
    auto status = process_->Wait();
    process_.reset();
    port_ = 0;
    return status.ok() ? *status : -1;
  }

  ServerOptions options_;
  std::unique_ptr<Subprocess> process_;
  std::string stderr_path_;
  int port_ = 0;
  int starts_ = 0;
};

}  // namespace tessera::test
