// Entry points of `tessera worker`, one per mode.
#pragma once

#include <string>

#include "protocol/wire_format.h"
#include "worker/worker_options.h"

namespace tessera::worker {

// Protocol v2 on stdin/stdout. With `keep_alive` the process serves requests
// until end of input; without, it answers one frame and exits (--mode stdin).
// stdout is reserved for frames: anything else a library prints goes to stderr.
int RunStdinWorker(WorkerOptions options, bool keep_alive);

struct DirectoryBatchSpec {
  std::string input_dir;
  std::string output_dir;
  protocol::Engine engine = protocol::Engine::kLanczos;
};

// --mode batch: every image file of input_dir (sorted by name, not recursive) is
// processed like a one-image request and written to output_dir under the same
// stem with the output format's extension. A bad file is reported and skipped.
// Exit code 0 when every file succeeded, 1 when any failed, 2 on setup errors.
int RunDirectoryBatch(WorkerOptions options, const DirectoryBatchSpec& spec);

}  // namespace tessera::worker
