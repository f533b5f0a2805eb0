// The one subprocess helper: start a program with pipes to its stdin and stdout,
// optionally in its own process group, and reap it.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace tessera {

struct SubprocessOptions {
  std::vector<std::string> argv;                 // argv[0] is looked up in PATH when it has no '/'
  std::map<std::string, std::string> extra_env;  // added to (or replacing in) the parent's environment
  bool pipe_stdin = true;
  bool pipe_stdout = true;
  std::string stderr_path;         // empty: inherit the parent's stderr
  bool new_process_group = false;  // so the whole tree can be signalled at once
  // The child's stderr goes where its stdout goes (the stdout pipe when piped), so
  // both streams arrive interleaved in the order written. Excludes stderr_path.
  bool merge_stderr_into_stdout = false;
  // The child changes into this directory before exec; empty: the parent's. When
  // the change fails, Start() reaps the child and returns the error.
  std::string working_directory;
  // When exec itself fails (no such program, not executable), Start() reaps the
  // child and returns the error (kNotFound for a missing program). When false, a
  // failed exec is reported as before: the child exits with status 127.
  bool exec_failure_is_error = false;
  // The child is killed (SIGKILL) when the thread that started it, or the whole
  // parent, dies: a server killed with -9 leaves no generator holding a GPU and no
  // worker running unseen. Start such children only from long-lived threads.
  bool kill_with_parent = false;
};

class Subprocess {
 public:
  static Result<Subprocess> Start(const SubprocessOptions& options);

  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  // Closes the pipes and, if the child still runs, kills and reaps it.
  ~Subprocess();

  pid_t pid() const { return pid_; }
  int stdin_fd() const { return stdin_fd_; }    // -1 when not piped or closed
  int stdout_fd() const { return stdout_fd_; }  // -1 when not piped or closed

  void CloseStdin();
  // Sends `signal` to the child (or its whole group when it has one). With a group,
  // this still reaches what the child left running in it after it was reaped: the
  // group id cannot be reused while any member lives.
  void Signal(int signal);
  // Waits for the child to exit; returns its raw wait status (see WIFEXITED).
  // Once reaped, later calls return the same status.
  Result<int> Wait();
  // Non-blocking Wait(): the raw wait status once the child has exited (reaping
  // it), std::nullopt while it still runs or when there is no child.
  std::optional<int> TryWait();

 private:
  Subprocess() = default;
  void Release();

  pid_t pid_ = -1;
  bool own_group_ = false;
  bool reaped_ = false;
  int wait_status_ = 0;  // valid once reaped_
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
};

}  // namespace tessera
