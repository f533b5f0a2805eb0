#include "run_program.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "test_images.h"
#include "util/fd_io.h"
#include "util/subprocess.h"

namespace tessera::test {

RunResult RunProgram(const std::vector<std::string>& argv) {
  // stderr goes to a file while stdout is read from the pipe: neither can fill and block the child.
  char path[] = "/tmp/tessera-cli-XXXXXX";
  int fd = ::mkstemp(path);
  ::close(fd);
  SubprocessOptions o;
  o.argv = argv;
  o.pipe_stdin = false;
  o.stderr_path = path;
  auto child = Subprocess::Start(o);
  EXPECT_TRUE(child.ok()) << argv[0];
  RunResult result;
  if (child.ok()) {
    std::vector<uint8_t> buf(1 << 16);
    for (;;) {
      auto n = ReadSome(child->stdout_fd(), buf.data(), buf.size());
      if (!n.ok() || *n == 0) break;
      result.output.append(reinterpret_cast<char*>(buf.data()), *n);
    }
    auto status = child->Wait();
    if (status.ok() && WIFEXITED(*status)) result.exit_code = WEXITSTATUS(*status);
  }
  std::ifstream err(path);
  result.output.append(std::istreambuf_iterator<char>(err), std::istreambuf_iterator<char>());
  std::remove(path);
  return result;
}

RunResult RunTessera(const std::vector<std::string>& args) {
  std::vector<std::string> argv{TesseraBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgram(argv);
}

}  // namespace tessera::test
