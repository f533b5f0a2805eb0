#include "util/subprocess.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "util/fd_io.h"

namespace tessera {
namespace {

TEST(SubprocessTest, PipesBothWaysAndReportsTheExitCode) {
  SubprocessOptions o;
  o.argv = {"sh", "-c", "read line; echo \"got $line $GREETING\"; exit 3"};
  o.extra_env = {{"GREETING", "hi"}};
  auto child = Subprocess::Start(o);
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  std::string input = "ping\n";
  ASSERT_TRUE(WriteFull(child->stdin_fd(), {reinterpret_cast<const uint8_t*>(input.data()), input.size()}).ok());
  child->CloseStdin();
  uint8_t buf[64];
  auto n = ReadFull(child->stdout_fd(), buf, sizeof buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), *n), "got ping hi\n");
  auto status = child->Wait();
  ASSERT_TRUE(status.ok());
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 3);
}

TEST(SubprocessTest, MissingProgramExitsWith127) {
  SubprocessOptions o;
  o.argv = {"/nonexistent/tessera-test-program"};
  auto child = Subprocess::Start(o);
  ASSERT_TRUE(child.ok());
  auto status = child->Wait();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(WEXITSTATUS(*status), 127);
}

TEST(SubprocessTest, SignalReachesTheWholeGroup) {
  SubprocessOptions o;
  o.argv = {"sh", "-c", "sleep 30 & wait"};
  o.new_process_group = true;
  o.pipe_stdin = false;
  auto child = Subprocess::Start(o);
  ASSERT_TRUE(child.ok());
  child->Signal(SIGTERM);
  auto status = child->Wait();
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(WIFSIGNALED(*status));
}

// Everything the child writes on the stdout pipe, until end of file.
std::string ReadAll(int fd) {
  std::string text;
  uint8_t buf[256];
  for (;;) {
    auto n = ReadSome(fd, buf, sizeof buf);
    if (!n.ok() || *n == 0) break;
    text.append(reinterpret_cast<char*>(buf), *n);
  }
  return text;
}

TEST(SubprocessTest, MergedStderrArrivesOnTheStdoutPipeInOrder) {
  SubprocessOptions o;
  o.argv = {"sh", "-c", "echo one; echo two >&2; echo three"};
  o.pipe_stdin = false;
  o.merge_stderr_into_stdout = true;
  auto child = Subprocess::Start(o);
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  EXPECT_EQ(ReadAll(child->stdout_fd()), "one\ntwo\nthree\n");
  ASSERT_TRUE(child->Wait().ok());
}

TEST(SubprocessTest, MergingStderrAndAStderrFileIsRefused) {
  SubprocessOptions o;
  o.argv = {"true"};
  o.merge_stderr_into_stdout = true;
  o.stderr_path = "/tmp/tessera-subprocess-test.err";
  auto child = Subprocess::Start(o);
  ASSERT_FALSE(child.ok());
  EXPECT_EQ(child.status().code(), StatusCode::kInvalid);
}

TEST(SubprocessTest, RunsInTheWorkingDirectory) {
  std::string dir = std::filesystem::canonical(std::filesystem::temp_directory_path()).string();
  SubprocessOptions o;
  o.argv = {"pwd", "-P"};
  o.pipe_stdin = false;
  o.working_directory = dir;
  auto child = Subprocess::Start(o);
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  EXPECT_EQ(ReadAll(child->stdout_fd()), dir + "\n");
  ASSERT_TRUE(child->Wait().ok());
}

TEST(SubprocessTest, MissingWorkingDirectoryIsReportedByStart) {
  SubprocessOptions o;
  o.argv = {"true"};
  o.working_directory = "/nonexistent/tessera-test-dir";
  auto child = Subprocess::Start(o);
  ASSERT_FALSE(child.ok());
  EXPECT_EQ(child.status().code(), StatusCode::kNotFound);
  EXPECT_NE(child.status().message().find("chdir /nonexistent/tessera-test-dir"), std::string::npos)
      << child.status().message();
}

TEST(SubprocessTest, ExecFailureCanBeAStartError) {
  SubprocessOptions o;
  o.argv = {"/nonexistent/tessera-test-program"};
  o.exec_failure_is_error = true;
  auto child = Subprocess::Start(o);
  ASSERT_FALSE(child.ok());
  EXPECT_EQ(child.status().code(), StatusCode::kNotFound);
  EXPECT_NE(child.status().message().find("/nonexistent/tessera-test-program"), std::string::npos);
}

TEST(SubprocessTest, NonExecutableFileIsAStartError) {
  // A plain file without execute permission (even root needs one x bit to exec).
  char path[] = "/tmp/tessera-subprocess-test-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  ASSERT_EQ(::chmod(path, 0644), 0);
  SubprocessOptions o;
  o.argv = {path};
  o.exec_failure_is_error = true;
  auto child = Subprocess::Start(o);
  ::unlink(path);
  ASSERT_FALSE(child.ok());
  EXPECT_EQ(child.status().code(), StatusCode::kInvalid);
  EXPECT_NE(child.status().message().find(std::string("exec ") + path), std::string::npos)
      << child.status().message();
}

TEST(SubprocessTest, TryWaitIsNulloptWhileRunningThenTheStatus) {
  SubprocessOptions o;
  o.argv = {"sh", "-c", "read line; exit 5"};
  o.pipe_stdout = false;
  auto child = Subprocess::Start(o);
  ASSERT_TRUE(child.ok());
  // The child blocks on its stdin until we close it: it cannot have exited yet.
  EXPECT_FALSE(child->TryWait().has_value());
  child->CloseStdin();
  // Block until it has exited, without reaping it, so TryWait's answer is determined.
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(child->pid()), &info, WEXITED | WNOWAIT), 0);
  auto status = child->TryWait();
  ASSERT_TRUE(status.has_value());
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 5);
  // Reaped once; both calls keep answering the same.
  EXPECT_EQ(child->TryWait(), status);
  auto waited = child->Wait();
  ASSERT_TRUE(waited.ok());
  EXPECT_EQ(*waited, *status);
}

TEST(SubprocessTest, GroupSignalReachesWhatTheChildLeftBehind) {
  SubprocessOptions o;
  // The shell exits at once, leaving `sleep` in the group holding the stdout pipe.
  o.argv = {"sh", "-c", "sleep 30 & echo started"};
  o.pipe_stdin = false;
  o.new_process_group = true;
  auto child = Subprocess::Start(o);
  ASSERT_TRUE(child.ok());
  auto status = child->Wait();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(WEXITSTATUS(*status), 0);
  child->Signal(SIGKILL);
  // End of file comes only once the straggler is gone (else after 30 s).
  EXPECT_EQ(ReadAll(child->stdout_fd()), "started\n");
}

}  // namespace
}  // namespace tessera
