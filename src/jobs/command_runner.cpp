#include "jobs/command_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "util/fd_io.h"
#include "util/log.h"

namespace tessera::jobs {
namespace {

bool IsPlaceholder(std::string_view name) {
  return std::find(std::begin(kCommandPlaceholders), std::end(kCommandPlaceholders), name) !=
         std::end(kCommandPlaceholders);
}

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string SignalName(int signal) {
  const char* abbrev = ::sigabbrev_np(signal);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "unknown";
}

}  // namespace

Result<std::vector<std::string>> SplitCommandTemplate(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;  // also true for an empty quoted word
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (IsBlank(c)) {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      ++i;
    } else if (c == '\'') {
      size_t close = text.find('\'', i + 1);
      if (close == std::string_view::npos) {
        return InvalidError("command template: unterminated single quote at column " + std::to_string(i + 1));
      }
      word.append(text.substr(i + 1, close - i - 1));
      in_word = true;
      i = close + 1;
    } else if (c == '"') {
      size_t j = i + 1;
      for (;;) {
        if (j >= text.size()) {
          return InvalidError("command template: unterminated double quote at column " + std::to_string(i + 1));
        }
        if (text[j] == '"') break;
        if (text[j] == '\\' && j + 1 < text.size() && (text[j + 1] == '"' || text[j + 1] == '\\')) ++j;
        word.push_back(text[j]);
        ++j;
      }
      in_word = true;
      i = j + 1;
    } else if (c == '\\') {
      if (i + 1 >= text.size()) return InvalidError("command template: trailing backslash");
      word.push_back(text[i + 1]);
      in_word = true;
      i += 2;
    } else {
      word.push_back(c);
      in_word = true;
      ++i;
    }
  }
  if (in_word) words.push_back(std::move(word));
  if (words.empty()) return InvalidError("command template: no program given");
  return words;
}

Result<std::vector<std::string>> ExpandCommandTemplate(const std::vector<std::string>& argv_template,
                                                       const std::map<std::string, std::string>& values) {
  if (argv_template.empty()) return InvalidError("command template: no program given");
  for (const auto& [name, value] : values) {
    if (!IsPlaceholder(name)) return InvalidError("command template: no placeholder named {" + name + "}");
  }
  std::vector<std::string> argv;
  argv.reserve(argv_template.size());
  for (const std::string& element : argv_template) {
    std::string out;
    size_t i = 0;
    while (i < element.size()) {
      if (element[i] == '{' && i + 1 < element.size() && IsNameStart(element[i + 1])) {
        size_t j = i + 1;
        while (j < element.size() && IsNameChar(element[j])) ++j;
        if (j < element.size() && element[j] == '}') {
          std::string name = element.substr(i + 1, j - i - 1);
          if (!IsPlaceholder(name)) {
            return InvalidError("command template: unknown placeholder {" + name + "} in \"" + element + "\"");
          }
          auto value = values.find(name);
          if (value == values.end()) return InvalidError("command template: no value for {" + name + "}");
          out += value->second;
          i = j + 1;
          continue;
        }
      }
      out.push_back(element[i]);
      ++i;
    }
    argv.push_back(std::move(out));
  }
  return argv;
}

std::string CommandOutcome::Describe() const {
  std::string text;
  if (term_signal != 0) {
    text = "killed by signal " + std::to_string(term_signal) + " (" + SignalName(term_signal) + ")";
  } else {
    text = "exit code " + std::to_string(exit_code);
  }
  if (canceled) text += ", canceled";
  return text;
}

Result<std::unique_ptr<RunningCommand>> RunningCommand::Start(const CommandSpec& spec, OutputCallback on_output) {
  auto argv = ExpandCommandTemplate(spec.argv_template, spec.values);
  if (!argv.ok()) return argv.status();

  std::unique_ptr<RunningCommand> command(new RunningCommand());
  command->argv_ = std::move(*argv);
  command->on_output_ = std::move(on_output);

  if (!spec.log_path.empty()) {
    std::filesystem::path parent = std::filesystem::path(spec.log_path).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) return IoError("command log: cannot create " + parent.string() + ": " + ec.message());
    command->log_fd_ = ::open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (command->log_fd_ < 0) {
      return IoError("command log: cannot open " + spec.log_path + ": " + std::strerror(errno));
    }
  }

  SubprocessOptions options;
  options.kill_with_parent = true;
  options.argv = command->argv_;
  options.extra_env = spec.env;
  options.pipe_stdin = true;  // closed at once: the command reads end of file, never the server's stdin
  options.pipe_stdout = true;
  options.merge_stderr_into_stdout = true;
  options.new_process_group = true;
  options.working_directory = spec.working_directory;
  options.exec_failure_is_error = true;
  auto process = Subprocess::Start(options);
  if (!process.ok()) {
    // The destructor closes the log; no thread and no child exist yet.
    Status status(process.status().code(), "cannot start command: " + process.status().message());
    LogWarn("command_start_failed").Field("program", command->argv_[0]).Field("error", status.message());
    return status;
  }
  command->process_.emplace(std::move(*process));
  command->process_->CloseStdin();
  command->pid_ = command->process_->pid();
  LogInfo("command_started")
      .Field("pid", static_cast<int64_t>(command->pid_))
      .Field("program", command->argv_[0])
      .Field("log", spec.log_path);

  RunningCommand* self = command.get();
  self->waiter_ = std::thread([self] { self->Reap(); });
  self->reader_ = std::thread([self] { self->ReadOutput(); });
  return command;
}

void RunningCommand::ReadOutput() {
  const int fd = process_->stdout_fd();
  bool log_ok = log_fd_ >= 0;
  std::vector<uint8_t> buffer(64 * 1024);
  for (;;) {
    auto n = ReadSome(fd, buffer.data(), buffer.size());
    if (!n.ok()) {
      LogWarn("command_output_read_failed").Field("pid", static_cast<int64_t>(pid_)).Field("error", n.status().message());
      break;
    }
    if (*n == 0) break;
    std::span<const uint8_t> bytes(buffer.data(), *n);
    if (log_ok) {
      Status written = WriteFull(log_fd_, bytes);
      if (!written.ok()) {
        log_ok = false;  // keep reading: the command must not block on a full pipe
        LogWarn("command_log_write_failed").Field("pid", static_cast<int64_t>(pid_)).Field("error", written.message());
      }
    }
    std::string_view chunk(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    tail_.append(chunk);
    if (tail_.size() > 2 * CommandOutcome::kTailBytes) tail_.erase(0, tail_.size() - CommandOutcome::kTailBytes);
    if (on_output_) on_output_(chunk);
  }
  if (tail_.size() > CommandOutcome::kTailBytes) tail_.erase(0, tail_.size() - CommandOutcome::kTailBytes);
}

void RunningCommand::Reap() {
  // Wait for the exit without reaping: the zombie keeps the group id reserved
  // while what the command left running in its group is killed.
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
  }
  ::kill(-pid_, SIGKILL);
  auto status = process_->Wait();
  std::lock_guard<std::mutex> lock(mutex_);
  wait_status_ = status.ok() ? *status : 0;
  exited_ = true;
  exited_cv_.notify_all();
}

pid_t RunningCommand::pid() const { return pid_; }

bool RunningCommand::exited() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return exited_;
}

void RunningCommand::Cancel(std::chrono::milliseconds grace) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (exited_) return;
  if (!cancel_requested_) {
    cancel_requested_ = true;
    LogInfo("command_cancel").Field("pid", static_cast<int64_t>(pid_)).Field("grace_ms", static_cast<int64_t>(grace.count()));
  }
  ::kill(-pid_, SIGTERM);
  if (!exited_cv_.wait_for(lock, grace, [this] { return exited_; })) {
    LogWarn("command_kill").Field("pid", static_cast<int64_t>(pid_)).Field("reason", "still running after the grace period");
    ::kill(-pid_, SIGKILL);
    exited_cv_.wait(lock, [this] { return exited_; });
  }
}

CommandOutcome RunningCommand::Wait() {
  std::lock_guard<std::mutex> wait_lock(wait_mutex_);
  if (outcome_) return *outcome_;
  if (waiter_.joinable()) waiter_.join();
  if (reader_.joinable()) reader_.join();
  CommandOutcome outcome;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (WIFEXITED(wait_status_)) outcome.exit_code = WEXITSTATUS(wait_status_);
    if (WIFSIGNALED(wait_status_)) outcome.term_signal = WTERMSIG(wait_status_);
    outcome.canceled = cancel_requested_;
  }
  outcome.output_tail = std::move(tail_);
  LogInfo("command_exited").Field("pid", static_cast<int64_t>(pid_)).Field("outcome", outcome.Describe());
  outcome_ = outcome;
  return outcome;
}

RunningCommand::~RunningCommand() {
  if (waiter_.joinable() || reader_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!exited_) ::kill(-pid_, SIGKILL);
    }
    Wait();
  }
  if (log_fd_ >= 0) ::close(log_fd_);
}

}  // namespace tessera::jobs
