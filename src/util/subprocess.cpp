#include "util/subprocess.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace tessera {
namespace {

void CloseFd(int* fd) {
  if (*fd >= 0) ::close(*fd);
  *fd = -1;
}

std::string ErrnoText(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// What a child that could not exec tells its parent over the report pipe.
enum class ChildStage : int { kChdir = 1, kExec = 2 };
struct ChildFailure {
  ChildStage stage;
  int error_number;
};

// Writes the failure in one write(2) (well below PIPE_BUF, so atomic); async-signal-safe.
void ReportChildFailure(int fd, ChildStage stage, int error_number) {
  ChildFailure failure{stage, error_number};
  ssize_t ignored = ::write(fd, &failure, sizeof failure);
  (void)ignored;
}

// Reads the report pipe until the child execs (end of file, nothing sent) or reports.
std::optional<ChildFailure> ReadChildFailure(int fd) {
  ChildFailure failure;
  size_t got = 0;
  auto* dst = reinterpret_cast<char*>(&failure);
  while (got < sizeof failure) {
    ssize_t n = ::read(fd, dst + got, sizeof failure - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  if (got != sizeof failure) return std::nullopt;
  return failure;
}

Status ChildFailureStatus(const ChildFailure& failure, const SubprocessOptions& options) {
  std::string what = failure.stage == ChildStage::kChdir ? "chdir " + options.working_directory
                                                          : "exec " + options.argv[0];
  std::string message = "subprocess: " + what + ": " + std::strerror(failure.error_number);
  if (failure.error_number == ENOENT) return Status(StatusCode::kNotFound, message);
  if (failure.error_number == EACCES || failure.error_number == ENOTDIR || failure.error_number == ENOEXEC) {
    return InvalidError(message);
  }
  return IoError(message);
}

}  // namespace

Result<Subprocess> Subprocess::Start(const SubprocessOptions& options) {
  if (options.argv.empty()) return InvalidError("subprocess: empty argv");
  if (options.merge_stderr_into_stdout && !options.stderr_path.empty()) {
    return InvalidError("subprocess: stderr cannot both go to a file and merge into stdout");
  }

  // Everything the child needs is prepared before fork(): after it, only
  // async-signal-safe calls are allowed.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    std::string key = entry.substr(0, entry.find('='));
    if (options.extra_env.count(key) == 0) env_strings.push_back(entry);
  }
  for (const auto& [k, v] : options.extra_env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = options.argv;
  std::vector<char*> argv;
  for (auto& a : argv_copy) argv.push_back(a.data());
  argv.push_back(nullptr);

  int in_pipe[2] = {-1, -1};
  int out_pipe[2] = {-1, -1};
  if (options.pipe_stdin && ::pipe2(in_pipe, O_CLOEXEC) != 0) return IoError(ErrnoText("pipe"));
  if (options.pipe_stdout && ::pipe2(out_pipe, O_CLOEXEC) != 0) {
    CloseFd(&in_pipe[0]);
    CloseFd(&in_pipe[1]);
    return IoError(ErrnoText("pipe"));
  }
  int err_fd = -1;
  if (!options.stderr_path.empty()) {
    err_fd = ::open(options.stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (err_fd < 0) {
      for (int* fd : {&in_pipe[0], &in_pipe[1], &out_pipe[0], &out_pipe[1]}) CloseFd(fd);
      return IoError(ErrnoText(("open " + options.stderr_path).c_str()));
    }
  }

  // Close-on-exec: end of file on it tells the parent the exec succeeded.
  int report_pipe[2] = {-1, -1};
  if (::pipe2(report_pipe, O_CLOEXEC) != 0) {
    for (int* fd : {&in_pipe[0], &in_pipe[1], &out_pipe[0], &out_pipe[1], &err_fd}) CloseFd(fd);
    return IoError(ErrnoText("pipe"));
  }
  const char* working_directory = options.working_directory.empty() ? nullptr : options.working_directory.c_str();

  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    for (int* fd : {&in_pipe[0], &in_pipe[1], &out_pipe[0], &out_pipe[1], &err_fd, &report_pipe[0], &report_pipe[1]}) {
      CloseFd(fd);
    }
    return IoError(ErrnoText("fork"));
  }
  if (pid == 0) {
    if (options.kill_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);  // the parent died before the line above
    }
    if (options.new_process_group) ::setpgid(0, 0);
    if (in_pipe[0] >= 0) ::dup2(in_pipe[0], STDIN_FILENO);
    if (out_pipe[1] >= 0) ::dup2(out_pipe[1], STDOUT_FILENO);
    if (err_fd >= 0) ::dup2(err_fd, STDERR_FILENO);
    if (options.merge_stderr_into_stdout) ::dup2(STDOUT_FILENO, STDERR_FILENO);
    // A mask or ignored SIGPIPE inherited from a server thread must not reach the
    // program: it has to die of SIGTERM when cancelled.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (working_directory != nullptr && ::chdir(working_directory) != 0) {
      ReportChildFailure(report_pipe[1], ChildStage::kChdir, errno);
      ::_exit(127);
    }
    ::execvpe(argv[0], argv.data(), envp.data());
    ReportChildFailure(report_pipe[1], ChildStage::kExec, errno);
    const char msg[] = "subprocess: exec failed\n";
    ssize_t ignored = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
    ::_exit(127);
  }

  // Also set from the parent, so the group exists before Start() returns whatever
  // the scheduling (the child's own call may come later; one of the two suffices).
  if (options.new_process_group) ::setpgid(pid, pid);
  CloseFd(&in_pipe[0]);
  CloseFd(&out_pipe[1]);
  CloseFd(&err_fd);
  CloseFd(&report_pipe[1]);
  std::optional<ChildFailure> failure = ReadChildFailure(report_pipe[0]);
  CloseFd(&report_pipe[0]);
  if (failure && (failure->stage == ChildStage::kChdir || options.exec_failure_is_error)) {
    CloseFd(&in_pipe[1]);
    CloseFd(&out_pipe[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return ChildFailureStatus(*failure, options);
  }
  Subprocess child;
  child.pid_ = pid;
  child.own_group_ = options.new_process_group;
  child.stdin_fd_ = in_pipe[1];
  child.stdout_fd_ = out_pipe[0];
  return child;
}

Subprocess::Subprocess(Subprocess&& other) noexcept { *this = std::move(other); }

Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
  if (this != &other) {
    Release();
    pid_ = other.pid_;
    own_group_ = other.own_group_;
    reaped_ = other.reaped_;
    wait_status_ = other.wait_status_;
    stdin_fd_ = other.stdin_fd_;
    stdout_fd_ = other.stdout_fd_;
    other.pid_ = -1;
    other.stdin_fd_ = -1;
    other.stdout_fd_ = -1;
  }
  return *this;
}

Subprocess::~Subprocess() { Release(); }

void Subprocess::Release() {
  CloseFd(&stdin_fd_);
  CloseFd(&stdout_fd_);
  if (pid_ > 0 && !reaped_) {
    Signal(SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  pid_ = -1;
}

void Subprocess::CloseStdin() { CloseFd(&stdin_fd_); }

void Subprocess::Signal(int signal) {
  if (pid_ <= 0) return;
  if (own_group_) {
    ::kill(-pid_, signal);
  } else if (!reaped_) {
    ::kill(pid_, signal);
  }
}

Result<int> Subprocess::Wait() {
  if (pid_ <= 0) return InvalidError("subprocess: no child to wait for");
  if (reaped_) return wait_status_;
  int status = 0;
  for (;;) {
    if (::waitpid(pid_, &status, 0) >= 0) break;
    if (errno != EINTR) return IoError(ErrnoText("waitpid"));
  }
  reaped_ = true;
  wait_status_ = status;
  return status;
}

std::optional<int> Subprocess::TryWait() {
  if (pid_ <= 0) return std::nullopt;
  if (reaped_) return wait_status_;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) return std::nullopt;
  reaped_ = true;
  wait_status_ = status;
  return status;
}

}  // namespace tessera
