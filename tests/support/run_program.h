// Runs a program to its end and keeps what it printed: how CLI tests meet
// `tessera` (and ffmpeg, ffprobe) as a user does.
#pragma once

#include <string>
#include <vector>

namespace tessera::test {

struct RunResult {
  int exit_code = -1;  // -1 when it did not exit normally
  std::string output;  // stdout, then stderr
};

// Runs `argv` (argv[0] looked up in PATH when it has no '/') with no stdin and waits for it.
RunResult RunProgram(const std::vector<std::string>& argv);
// `tessera <args>`, the binary under test.
RunResult RunTessera(const std::vector<std::string>& args);

}  // namespace tessera::test
