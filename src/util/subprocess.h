// The one subprocess helper: start a program with pipes to its stdin and stdout,
// optionally in its own process group, and reap it.
#pragma once

#include <sys/types.h>

#include <map>
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
  // Sends `signal` to the child (or its whole group when it has one).
  void Signal(int signal);
  // Waits for the child to exit; returns its raw wait status (see WIFEXITED).
  Result<int> Wait();

 private:
  Subprocess() = default;
  void Release();

  pid_t pid_ = -1;
  bool own_group_ = false;
  bool reaped_ = false;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
};

}  // namespace tessera
