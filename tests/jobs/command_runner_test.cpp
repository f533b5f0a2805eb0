#include "jobs/command_runner.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "util/fd_io.h"
#include "util/subprocess.h"

namespace tessera::jobs {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kFakeGenerator = std::string(TESSERA_SOURCE_DIR) + "/tests/fixtures/fake_generate.py";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "tessera-command-runner-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Collects the command's output as the callback delivers it, and lets the test
// block until some text has arrived.
class OutputWatcher {
 public:
  OutputCallback Callback() {
    return [this](std::string_view chunk) {
      std::lock_guard<std::mutex> lock(mutex_);
      text_.append(chunk);
      ++chunks_;
      cv_.notify_all();
    };
  }
  bool WaitFor(const std::string& needle, std::chrono::seconds timeout = 30s) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return text_.find(needle) != std::string::npos; });
  }
  std::string text() {
    std::lock_guard<std::mutex> lock(mutex_);
    return text_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::string text_;
  int chunks_ = 0;
};

// Output split into lines the way generators end them: at '\n' or '\r'.
std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::string line;
  for (char c : text) {
    if (c == '\n' || c == '\r') {
      if (!line.empty()) lines.push_back(line);
      line.clear();
    } else {
      line.push_back(c);
    }
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

// The fake generator with the default template's flags.
CommandSpec FakeGeneratorSpec(const fs::path& dir) {
  auto argv = SplitCommandTemplate(kDefaultGeneratorTemplate);
  EXPECT_TRUE(argv.ok());
  CommandSpec spec;
  spec.argv_template = *argv;
  spec.argv_template[1] = kFakeGenerator;  // "generate.py"
  spec.values = {{"prompt", "a cat"},           {"width", "1280"},
                 {"height", "704"},             {"output", (dir / "out.mp4").string()},
                 {"ckpt_dir", "/models/wan"}};
  spec.log_path = (dir / "logs" / "job.log").string();
  return spec;
}

bool ProcessExists(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

// ---- SplitCommandTemplate ----

TEST(SplitCommandTemplateTest, SplitsTheDefaultTemplateOnBlanks) {
  auto argv = SplitCommandTemplate(kDefaultGeneratorTemplate);
  ASSERT_TRUE(argv.ok()) << argv.status().ToString();
  std::vector<std::string> expected = {"python3",      "generate.py",   "--task",  "ti2v-5B",
                                       "--size",       "{width}*{height}", "--ckpt_dir", "{ckpt_dir}",
                                       "--offload_model", "True",        "--convert_model_dtype", "--t5_cpu",
                                       "--prompt",     "{prompt}",      "--save_file", "{output}"};
  EXPECT_EQ(*argv, expected);
}

TEST(SplitCommandTemplateTest, HonoursQuotesAndEscapes) {
  auto argv = SplitCommandTemplate(R"(  run 'a b  "c"' "d \"e\" \\ \n" f\ g '' "" h'i'"j"  )");
  ASSERT_TRUE(argv.ok()) << argv.status().ToString();
  std::vector<std::string> expected = {"run", "a b  \"c\"", "d \"e\" \\ \\n", "f g", "", "", "hij"};
  EXPECT_EQ(*argv, expected);
}

TEST(SplitCommandTemplateTest, TabsAndNewlinesSeparateWords) {
  auto argv = SplitCommandTemplate("a\tb\nc");
  ASSERT_TRUE(argv.ok());
  EXPECT_EQ(*argv, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(SplitCommandTemplateTest, UnterminatedQuotesAreClearErrors) {
  auto single = SplitCommandTemplate("python3 'generate.py --x");
  ASSERT_FALSE(single.ok());
  EXPECT_EQ(single.status().code(), StatusCode::kInvalid);
  EXPECT_NE(single.status().message().find("unterminated single quote at column 9"), std::string::npos)
      << single.status().message();

  auto dbl = SplitCommandTemplate(R"(python3 "generate.py \")");
  ASSERT_FALSE(dbl.ok());
  EXPECT_EQ(dbl.status().code(), StatusCode::kInvalid);
  EXPECT_NE(dbl.status().message().find("unterminated double quote"), std::string::npos) << dbl.status().message();
}

TEST(SplitCommandTemplateTest, TrailingBackslashAndEmptyTemplateAreErrors) {
  EXPECT_EQ(SplitCommandTemplate("a b\\").status().code(), StatusCode::kInvalid);
  EXPECT_EQ(SplitCommandTemplate("   ").status().code(), StatusCode::kInvalid);
  EXPECT_EQ(SplitCommandTemplate("").status().code(), StatusCode::kInvalid);
}

// ---- ExpandCommandTemplate ----

TEST(ExpandCommandTemplateTest, SubstitutesInsideElements) {
  auto argv = ExpandCommandTemplate({"gen", "--size", "{width}*{height}", "--out={output}", "{gpu_id}{job_id}"},
                                    {{"width", "1280"}, {"height", "704"}, {"output", "/r/x.mp4"}, {"gpu_id", "1"},
                                     {"job_id", "j"}});
  ASSERT_TRUE(argv.ok()) << argv.status().ToString();
  EXPECT_EQ(*argv, (std::vector<std::string>{"gen", "--size", "1280*704", "--out=/r/x.mp4", "1j"}));
}

TEST(ExpandCommandTemplateTest, SubstitutedTextIsNeverExpandedAgain) {
  auto argv = ExpandCommandTemplate({"gen", "{prompt}"}, {{"prompt", "say {output} and $(id); `x` \"q\""},
                                                          {"output", "SHOULD-NOT-APPEAR"}});
  ASSERT_TRUE(argv.ok());
  EXPECT_EQ((*argv)[1], "say {output} and $(id); `x` \"q\"");
}

TEST(ExpandCommandTemplateTest, BracesThatAreNotPlaceholdersStay) {
  auto argv = ExpandCommandTemplate({"gen", "{}", "{\"a\":1}", "{Width}", "{"}, {});
  ASSERT_TRUE(argv.ok()) << argv.status().ToString();
  EXPECT_EQ(*argv, (std::vector<std::string>{"gen", "{}", "{\"a\":1}", "{Width}", "{"}));
}

TEST(ExpandCommandTemplateTest, UnknownPlaceholderIsInvalid) {
  auto argv = ExpandCommandTemplate({"gen", "--seed={seed}"}, {});
  ASSERT_FALSE(argv.ok());
  EXPECT_EQ(argv.status().code(), StatusCode::kInvalid);
  EXPECT_NE(argv.status().message().find("unknown placeholder {seed}"), std::string::npos) << argv.status().message();
}

TEST(ExpandCommandTemplateTest, PlaceholderWithoutValueIsInvalid) {
  auto argv = ExpandCommandTemplate({"gen", "{prompt}"}, {});
  ASSERT_FALSE(argv.ok());
  EXPECT_EQ(argv.status().code(), StatusCode::kInvalid);
  EXPECT_NE(argv.status().message().find("no value for {prompt}"), std::string::npos);
}

TEST(ExpandCommandTemplateTest, ValueForAnUnknownNameIsInvalid) {
  auto argv = ExpandCommandTemplate({"gen"}, {{"ckpt-dir", "/m"}});
  ASSERT_FALSE(argv.ok());
  EXPECT_EQ(argv.status().code(), StatusCode::kInvalid);
  EXPECT_NE(argv.status().message().find("{ckpt-dir}"), std::string::npos);
}

// ---- RunningCommand with the fake generator ----

TEST(RunningCommandTest, DefaultTemplateProducesTheRequestedVideo) {
  TempDir dir;
  // The default template runs ./generate.py from the working directory: point it at the fake.
  fs::create_symlink(kFakeGenerator, dir.path() / "generate.py");
  CommandSpec spec;
  spec.argv_template = *SplitCommandTemplate(kDefaultGeneratorTemplate);
  spec.values = {{"prompt", "a cat"}, {"width", "1280"}, {"height", "704"},
                 {"output", (dir.path() / "results" / "out.mp4").string()}, {"ckpt_dir", "/models/wan"}};
  spec.working_directory = dir.path().string();
  auto command = RunningCommand::Start(spec);
  ASSERT_TRUE(command.ok()) << command.status().ToString();
  CommandOutcome outcome = (*command)->Wait();
  ASSERT_TRUE(outcome.succeeded()) << outcome.Describe() << "\n" << outcome.output_tail;
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_NE(outcome.output_tail.find("size=1280x704 ckpt_dir=/models/wan"), std::string::npos) << outcome.output_tail;

  SubprocessOptions probe;
  probe.argv = {"ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
                "-of", "csv=p=0", (dir.path() / "results" / "out.mp4").string()};
  probe.pipe_stdin = false;
  auto ffprobe = Subprocess::Start(probe);
  ASSERT_TRUE(ffprobe.ok());
  uint8_t buf[64];
  auto n = ReadFull(ffprobe->stdout_fd(), buf, sizeof buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), *n), "1280,704\n");
  ASSERT_TRUE(ffprobe->Wait().ok());
}

TEST(RunningCommandTest, PromptArrivesVerbatimWithoutAShell) {
  TempDir dir;
  fs::path marker = dir.path() / "injected";
  std::string prompt = "it's a \"test\"; touch " + marker.string() + " && echo $(touch " + marker.string() +
                       ") `touch " + marker.string() + "` | cat > /dev/null {output}";
  CommandSpec spec = FakeGeneratorSpec(dir.path());
  spec.values["prompt"] = prompt;
  auto command = RunningCommand::Start(spec);
  ASSERT_TRUE(command.ok()) << command.status().ToString();
  CommandOutcome outcome = (*command)->Wait();
  ASSERT_TRUE(outcome.succeeded()) << outcome.output_tail;
  std::vector<std::string> lines = Lines(ReadFile(spec.log_path));
  EXPECT_NE(std::find(lines.begin(), lines.end(), "received prompt: " + prompt), lines.end())
      << ReadFile(spec.log_path);
  EXPECT_FALSE(fs::exists(marker));
}

TEST(RunningCommandTest, EnvironmentAdditionsReachTheCommand) {
  TempDir dir;
  CommandSpec spec = FakeGeneratorSpec(dir.path());
  spec.env = {{"CUDA_VISIBLE_DEVICES", "3"}};
  auto command = RunningCommand::Start(spec);
  ASSERT_TRUE(command.ok());
  CommandOutcome outcome = (*command)->Wait();
  ASSERT_TRUE(outcome.succeeded()) << outcome.output_tail;
  std::vector<std::string> lines = Lines(outcome.output_tail);
  EXPECT_NE(std::find(lines.begin(), lines.end(), "CUDA_VISIBLE_DEVICES=3"), lines.end()) << outcome.output_tail;
}

TEST(RunningCommandTest, LogFileGetsAllOutputAndIsAppendedTo) {
  TempDir dir;
  CommandSpec spec = FakeGeneratorSpec(dir.path());
  ASSERT_FALSE(fs::exists(fs::path(spec.log_path).parent_path()));
  OutputWatcher first_output;
  auto first = RunningCommand::Start(spec, first_output.Callback());
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE((*first)->Wait().succeeded());
  std::string first_log = ReadFile(spec.log_path);
  // Every byte the callback saw (stdout and stderr merged) is in the log.
  EXPECT_EQ(first_log, first_output.text());
  EXPECT_NE(first_log.find("5/5"), std::string::npos);             // stderr (tqdm)
  EXPECT_NE(first_log.find("Finished."), std::string::npos);       // stdout

  spec.values["prompt"] = "second run";
  auto second = RunningCommand::Start(spec);
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE((*second)->Wait().succeeded());
  std::string both = ReadFile(spec.log_path);
  ASSERT_GT(both.size(), first_log.size());
  EXPECT_EQ(both.substr(0, first_log.size()), first_log);
  EXPECT_NE(both.find("received prompt: second run", first_log.size()), std::string::npos);
}

TEST(RunningCommandTest, CallbackSeesTqdmProgressSeparatedByCarriageReturns) {
  TempDir dir;
  CommandSpec spec = FakeGeneratorSpec(dir.path());
  OutputWatcher output;
  auto command = RunningCommand::Start(spec, output.Callback());
  ASSERT_TRUE(command.ok());
  ASSERT_TRUE((*command)->Wait().succeeded());
  std::string text = output.text();
  EXPECT_NE(text.find('\r'), std::string::npos);
  std::vector<std::string> progress;
  for (const std::string& line : Lines(text)) {
    if (line.find("it/s]") != std::string::npos) progress.push_back(line);
  }
  ASSERT_EQ(progress.size(), 5u) << text;
  for (int step = 1; step <= 5; ++step) {
    EXPECT_NE(progress[step - 1].find("| " + std::to_string(step) + "/5 ["), std::string::npos) << progress[step - 1];
  }
  EXPECT_EQ(progress[1].substr(0, 4), " 40%");
}

TEST(RunningCommandTest, CallbackSeesStructuredProgress) {
  TempDir dir;
  CommandSpec spec = FakeGeneratorSpec(dir.path());
  spec.env = {{"FAKE_GENERATE_STRUCTURED", "1"}, {"FAKE_GENERATE_STEPS", "3"}};
  OutputWatcher output;
  auto command = RunningCommand::Start(spec, output.Callback());
  ASSERT_TRUE(command.ok());
  ASSERT_TRUE((*command)->Wait().succeeded());
  std::vector<std::string> structured;
  for (const std::string& line : Lines(output.text())) {
    if (line.rfind("TESSERA_PROGRESS ", 0) == 0) structured.push_back(line);
  }
  EXPECT_EQ(structured, (std::vector<std::string>{R"(TESSERA_PROGRESS {"step": 1, "total": 3})",
                                                  R"(TESSERA_PROGRESS {"step": 2, "total": 3})",
                                                  R"(TESSERA_PROGRESS {"step": 3, "total": 3})"}));
}

TEST(RunningCommandTest, FailureReportsTheExitCodeAndTheTail) {
  TempDir dir;
  CommandSpec spec = FakeGeneratorSpec(dir.path());
  spec.env = {{"FAKE_GENERATE_FAIL", "1"}};
  auto command = RunningCommand::Start(spec);
  ASSERT_TRUE(command.ok());
  CommandOutcome outcome = (*command)->Wait();
  EXPECT_FALSE(outcome.succeeded());
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_EQ(outcome.term_signal, 0);
  EXPECT_FALSE(outcome.canceled);
  EXPECT_EQ(outcome.Describe(), "exit code 1");
  EXPECT_NE(outcome.output_tail.find("RuntimeError: fake generator failure"), std::string::npos)
      << outcome.output_tail;
  EXPECT_EQ(outcome.output_tail.find("3/5"), std::string::npos);  // it stopped after step 2
  EXPECT_FALSE(fs::exists(dir.path() / "out.mp4"));
}

TEST(RunningCommandTest, TailKeepsOnlyTheLastFourKiB) {
  CommandSpec spec;
  spec.argv_template = {"python3", "-c", "import sys; sys.stdout.write('x' * 20000 + 'END'); sys.exit(2)"};
  auto command = RunningCommand::Start(spec);
  ASSERT_TRUE(command.ok());
  CommandOutcome outcome = (*command)->Wait();
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_EQ(outcome.output_tail.size(), CommandOutcome::kTailBytes);
  EXPECT_EQ(outcome.output_tail.substr(outcome.output_tail.size() - 4), "xEND");
}

TEST(RunningCommandTest, CancelKillsABlockedJobsWholeProcessGroup) {
  TempDir dir;
  CommandSpec spec = FakeGeneratorSpec(dir.path());
  fs::path pidfile = dir.path() / "pid";
  spec.env = {{"FAKE_GENERATE_BLOCK_FILE", (dir.path() / "never").string()},
              {"FAKE_GENERATE_PIDFILE", pidfile.string()}};
  OutputWatcher output;
  auto command = RunningCommand::Start(spec, output.Callback());
  ASSERT_TRUE(command.ok());
  // Step 1 is printed after the pid file is written; then the fake blocks.
  ASSERT_TRUE(output.WaitFor("1/5"));
  pid_t pid = std::stoi(ReadFile(pidfile));
  EXPECT_EQ(pid, (*command)->pid());
  EXPECT_FALSE((*command)->exited());

  (*command)->Cancel(30s);
  EXPECT_TRUE((*command)->exited());
  CommandOutcome outcome = (*command)->Wait();
  EXPECT_TRUE(outcome.canceled);
  EXPECT_FALSE(outcome.succeeded());
  EXPECT_EQ(outcome.term_signal, SIGTERM);
  EXPECT_EQ(outcome.Describe(), "killed by signal 15 (SIGTERM), canceled");
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_EQ(::kill(-pid, 0), -1);  // and no group left either
  EXPECT_EQ(errno, ESRCH);
  EXPECT_EQ(output.text().find("2/5"), std::string::npos);
}

TEST(RunningCommandTest, CancelEscalatesToSigkillAfterTheGracePeriod) {
  CommandSpec spec;
  spec.argv_template = {"python3", "-c",
                        "import signal\n"
                        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                        "print('ignoring SIGTERM', flush=True)\n"
                        "while True: signal.pause()\n"};
  OutputWatcher output;
  auto command = RunningCommand::Start(spec, output.Callback());
  ASSERT_TRUE(command.ok());
  ASSERT_TRUE(output.WaitFor("ignoring SIGTERM"));
  auto started = std::chrono::steady_clock::now();
  (*command)->Cancel(200ms);
  auto took = std::chrono::steady_clock::now() - started;
  CommandOutcome outcome = (*command)->Wait();
  EXPECT_TRUE(outcome.canceled);
  EXPECT_EQ(outcome.term_signal, SIGKILL);
  EXPECT_GE(took, 200ms);  // SIGTERM alone did not end it
}

TEST(RunningCommandTest, CancelAfterExitChangesNothing) {
  CommandSpec spec;
  spec.argv_template = {"true"};
  auto command = RunningCommand::Start(spec);
  ASSERT_TRUE(command.ok());
  CommandOutcome first = (*command)->Wait();
  (*command)->Cancel(0ms);
  CommandOutcome again = (*command)->Wait();
  EXPECT_TRUE(again.succeeded());
  EXPECT_FALSE(again.canceled);
  EXPECT_EQ(again.exit_code, first.exit_code);
}

TEST(RunningCommandTest, WhatTheCommandLeavesRunningIsKilledWhenItExits) {
  // The shell exits at once; its background `sleep` holds the output pipe, so Wait()
  // would last 60 s if the group were not killed at the leader's exit.
  CommandSpec spec;
  spec.argv_template = {"sh", "-c", "sleep 60 & echo background=$!"};
  auto command = RunningCommand::Start(spec);
  ASSERT_TRUE(command.ok());
  auto started = std::chrono::steady_clock::now();
  CommandOutcome outcome = (*command)->Wait();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 30s);
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_NE(outcome.output_tail.find("background="), std::string::npos);
}

TEST(RunningCommandTest, StdinIsAtEndOfFile) {
  CommandSpec spec;
  spec.argv_template = {"sh", "-c", "cat; echo stdin-closed"};
  auto command = RunningCommand::Start(spec);
  ASSERT_TRUE(command.ok());
  CommandOutcome outcome = (*command)->Wait();
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_EQ(outcome.output_tail, "stdin-closed\n");
}

TEST(RunningCommandTest, DestructorKillsAndReapsARunningCommand) {
  TempDir dir;
  CommandSpec spec = FakeGeneratorSpec(dir.path());
  fs::path pidfile = dir.path() / "pid";
  spec.env = {{"FAKE_GENERATE_BLOCK_FILE", (dir.path() / "never").string()},
              {"FAKE_GENERATE_PIDFILE", pidfile.string()}};
  OutputWatcher output;
  pid_t pid = -1;
  {
    auto command = RunningCommand::Start(spec, output.Callback());
    ASSERT_TRUE(command.ok());
    ASSERT_TRUE(output.WaitFor("1/5"));
    pid = std::stoi(ReadFile(pidfile));
    ASSERT_TRUE(ProcessExists(pid));
  }
  EXPECT_EQ(::kill(pid, 0), -1);  // neither running nor a zombie
  EXPECT_EQ(errno, ESRCH);
}

TEST(RunningCommandTest, MissingExecutableIsAClearError) {
  TempDir dir;
  CommandSpec spec;
  spec.argv_template = {"/nonexistent/generate", "{prompt}"};
  spec.values = {{"prompt", "p"}};
  auto command = RunningCommand::Start(spec);
  ASSERT_FALSE(command.ok());
  EXPECT_EQ(command.status().code(), StatusCode::kNotFound);
  EXPECT_NE(command.status().message().find("/nonexistent/generate"), std::string::npos)
      << command.status().message();

  spec.argv_template = {"tessera-no-such-generator"};
  spec.values.clear();
  auto from_path = RunningCommand::Start(spec);
  ASSERT_FALSE(from_path.ok());
  EXPECT_EQ(from_path.status().code(), StatusCode::kNotFound);
  EXPECT_NE(from_path.status().message().find("tessera-no-such-generator: No such file or directory"),
            std::string::npos)
      << from_path.status().message();
}

TEST(RunningCommandTest, MissingWorkingDirectoryIsAClearError) {
  CommandSpec spec;
  spec.argv_template = {"true"};
  spec.working_directory = "/nonexistent/wan2.2";
  auto command = RunningCommand::Start(spec);
  ASSERT_FALSE(command.ok());
  EXPECT_EQ(command.status().code(), StatusCode::kNotFound);
  EXPECT_NE(command.status().message().find("/nonexistent/wan2.2"), std::string::npos);
}

TEST(RunningCommandTest, UnknownPlaceholderFailsBeforeAnythingStarts) {
  TempDir dir;
  CommandSpec spec = FakeGeneratorSpec(dir.path());
  spec.argv_template.push_back("--seed={seed}");
  auto command = RunningCommand::Start(spec);
  ASSERT_FALSE(command.ok());
  EXPECT_EQ(command.status().code(), StatusCode::kInvalid);
  EXPECT_FALSE(fs::exists(spec.log_path));
}

}  // namespace
}  // namespace tessera::jobs
