// Entry point of `tessera worker --keep-alive` and `--mode stdin`; `--mode batch`
// is RunFileBatch (worker/file_batch.h).
#pragma once

#include <string>

#include "protocol/wire_format.h"
#include "worker/worker_options.h"

namespace tessera::worker {

// Protocol v2 on stdin/stdout. With `keep_alive` the process serves requests
// until end of input; without, it answers one frame and exits (--mode stdin).
// stdout is reserved for frames: anything else a library prints goes to stderr.
int RunStdinWorker(WorkerOptions options, bool keep_alive);

}  // namespace tessera::worker
