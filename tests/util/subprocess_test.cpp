#include "util/subprocess.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

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

}  // namespace
}  // namespace tessera
