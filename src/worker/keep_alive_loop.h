// The worker's serving loop: read a frame, validate, process, answer, flush, until
// end of input. Every frame gets exactly one response when it can be attributed;
// nothing but frames is written to the output descriptor; logs go to stderr.
#pragma once

#include <cstdint>

#include "worker/worker_options.h"

namespace tessera::worker {

class KeepAliveLoop {
 public:
  // `options` must outlive the loop; the descriptors are not closed.
  KeepAliveLoop(const WorkerOptions& options, int input_fd, int output_fd);

  // Serves requests until end of input, or after the first answered frame when
  // `single_request` is set (the one-shot `--mode stdin`). Returns an exit code:
  // 0 on end of input, 1 when reading or writing the descriptors failed.
  int Run(bool single_request);

  uint64_t requests_answered() const { return answered_; }

 private:
  const WorkerOptions& options_;
  int input_fd_;
  int output_fd_;
  uint64_t answered_ = 0;
};

}  // namespace tessera::worker
