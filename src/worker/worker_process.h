// The client side of a worker: a `tessera worker --keep-alive` child process and
// the protocol v2 exchange with it over its stdin/stdout. Used by the job server's
// lanes, the tests and the benchmarks.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "protocol/codec.h"
#include "util/subprocess.h"

namespace tessera::worker {

class WorkerProcess {
 public:
  // Starts `binary worker <mode_args...>`; the child's stderr goes to
  // `stderr_path` (inherited when empty).
  static Result<WorkerProcess> Start(const std::string& binary, const std::vector<std::string>& mode_args,
                                     const std::string& stderr_path = "");

  // Writes one whole frame (as made by protocol::EncodeRequestFrame, or any bytes).
  Status Send(std::span<const uint8_t> bytes);
  // Reads and decodes the next response frame. kIo at end of stream.
  Result<protocol::Response> Receive(uint64_t max_message_bytes = 4ull << 30);
  // Send then Receive.
  Result<protocol::Response> Call(std::span<const uint8_t> frame);

  // Closes the child's stdin (it then finishes and exits) and waits; returns the
  // raw wait status.
  Result<int> Finish();

  Subprocess& process() { return process_; }

 private:
  explicit WorkerProcess(Subprocess process) : process_(std::move(process)) {}
  Subprocess process_;
};

}  // namespace tessera::worker
