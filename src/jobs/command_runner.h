// Runs the external generator command of one job (seed 001: "lance generate.py avec
// CUDA_VISIBLE_DEVICES={gpu_id}; capte stdout/stderr vers un log par job").
//
// No shell is ever involved: the configured template is split into argv once
// (SplitCommandTemplate), and the job's values are substituted inside each argv
// element, so a prompt such as `"; rm -rf / $(reboot)` reaches the program as one
// verbatim argument.
//
// The command runs in its own process group with stdin at end of file, stdout and
// stderr merged. One reader thread appends every output byte to the job's log
// file and hands it to the caller's callback (to parse progress); one waiter
// thread reaps the child. When the child exits, whatever it left running in its
// group is killed, so no job outlives its command.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "util/status.h"
#include "util/subprocess.h"

namespace tessera::jobs {

// Wan2.2's generator (https://github.com/Wan-Video/Wan2.2), text-to-video 5B, run
// from its checkout (CommandSpec::working_directory). The memory flags let it fit
// a 24 GB GPU: weights offloaded between stages, T5 encoder on the CPU. The model
// only knows 704 as the short side; the job asks 1280*704 or 704*1280 and the
// result is padded to 720 afterwards.
inline constexpr std::string_view kDefaultGeneratorTemplate =
    "python3 generate.py --task ti2v-5B --size {width}*{height} --ckpt_dir {ckpt_dir} "
    "--offload_model True --convert_model_dtype --t5_cpu --prompt {prompt} --save_file {output}";

// The placeholders a template may use, written `{name}` inside any argv element.
inline constexpr std::string_view kCommandPlaceholders[] = {"prompt", "width",  "height", "size",
                                                            "output", "ckpt_dir", "gpu_id", "job_id"};

// Splits a configured command line into argv the way a POSIX shell splits words,
// without any expansion: blanks separate words; '...' keeps everything literally;
// "..." keeps everything but lets \" and \\ escape; outside quotes a backslash
// makes the next character literal. '' or "" make an empty argument. Errors
// (kInvalid): an unterminated quote, a trailing backslash, no words at all.
Result<std::vector<std::string>> SplitCommandTemplate(std::string_view text);

// Replaces every `{name}` (name: [a-z_][a-z0-9_]*) in each element with
// values[name]. Substituted text is never scanned again, and braces that do not
// form such a name (`{}`, `{"a":1}`) stay as they are. Errors (kInvalid, before
// anything runs): a placeholder not in kCommandPlaceholders, a placeholder with no
// value, a value for a name that is not a placeholder, an empty template.
Result<std::vector<std::string>> ExpandCommandTemplate(const std::vector<std::string>& argv_template,
                                                       const std::map<std::string, std::string>& values);

struct CommandSpec {
  std::vector<std::string> argv_template;        // from SplitCommandTemplate
  std::map<std::string, std::string> values;     // placeholder name -> text
  std::map<std::string, std::string> env;        // added to the server's environment (CUDA_VISIBLE_DEVICES)
  std::string working_directory;                 // empty: the server's
  std::string log_path;                          // appended to (directories created); empty: no log
};

struct CommandOutcome {
  int exit_code = -1;    // the exit status when it exited, else -1
  int term_signal = 0;   // the signal that killed it, else 0
  bool canceled = false;  // Cancel() was called before it ended
  std::string output_tail;  // the last kTailBytes of its output, for error messages

  static constexpr size_t kTailBytes = 4096;

  bool succeeded() const { return !canceled && term_signal == 0 && exit_code == 0; }
  // "exit code 1", "killed by signal 9 (SIGKILL)", with ", canceled" when it was.
  std::string Describe() const;
};

// Called on the reader thread with output as it arrives: chunks split lines (and
// UTF-8 sequences) anywhere; lines end with '\n' or '\r' (tqdm redraws with '\r').
// It must not call Wait() and should return quickly: the command blocks on its
// output while the callback runs.
using OutputCallback = std::function<void(std::string_view chunk)>;

// One started command. Thread-safe: Cancel() may be called from any thread while
// another waits in Wait().
class RunningCommand {
 public:
  // Expands the template, opens the log, and starts the command. Errors: kInvalid
  // (template), kNotFound (no such program or working directory), kIo (log file).
  static Result<std::unique_ptr<RunningCommand>> Start(const CommandSpec& spec, OutputCallback on_output = {});

  RunningCommand(const RunningCommand&) = delete;
  RunningCommand& operator=(const RunningCommand&) = delete;
  // Kills the whole group at once if it still runs, then reaps it and joins the
  // threads: never leaves a zombie or a stray process behind.
  ~RunningCommand();

  pid_t pid() const;  // also the process group id
  const std::vector<std::string>& argv() const { return argv_; }

  // SIGTERM to the whole group; SIGKILL to it if the command has not exited
  // `grace` later. Returns once the command has exited. Idempotent; no effect on
  // a command that already ended (the outcome then is not marked canceled).
  void Cancel(std::chrono::milliseconds grace = std::chrono::seconds(10));

  // Blocks until the command has exited and all its output is read and logged.
  // Later calls return the same outcome.
  CommandOutcome Wait();

  // True once the command has exited (its output may still be draining).
  bool exited() const;

 private:
  RunningCommand() = default;
  void ReadOutput();  // the reader thread
  void Reap();        // the waiter thread

  std::vector<std::string> argv_;
  std::optional<Subprocess> process_;  // the waiter thread reaps it; nothing else touches it until both threads ended
  pid_t pid_ = -1;      // the child and its group; fixed after Start()
  int log_fd_ = -1;
  OutputCallback on_output_;
  std::string tail_;  // written by the reader thread only; read after joining it

  // The group may be signalled only while exited_ is false: until the child is
  // reaped its pid (hence the group id) cannot belong to anyone else.
  mutable std::mutex mutex_;
  std::condition_variable exited_cv_;
  bool exited_ = false;
  bool cancel_requested_ = false;
  int wait_status_ = 0;

  std::mutex wait_mutex_;  // one thread at a time joins the threads in Wait()
  std::optional<CommandOutcome> outcome_;
  std::thread reader_;
  std::thread waiter_;
};

}  // namespace tessera::jobs
