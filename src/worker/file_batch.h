// One-shot processing of files: a single image, or every image of a directory,
// through the same BatchProcessor path as protocol requests (one image each).
// Used by `tessera upscale` and `tessera worker --mode batch`.
#pragma once

#include <cstdint>
#include <string>

#include "protocol/wire_format.h"
#include "worker/worker_options.h"

namespace tessera::worker {

struct FileBatchSpec {
  std::string input;   // an image file or a directory
  std::string output;  // a file (for a file input) or a directory
  protocol::Engine engine = protocol::Engine::kLanczos;
  std::string quality;  // model name or scale; empty: the options' defaults
  int32_t gpu_id = -1;  // as in a request: the device rules of DeviceSelector apply
  bool show_progress = false;  // a progress bar on stderr when it is a terminal
};

// A directory input: its image files (sorted by name, not recursive) go to the
// output directory as <stem>.<format>. A file input: to the output path; when
// that is an existing directory, to <dir>/<stem>.<format>. Outputs are written
// to "<name>.partial" and renamed. A bad file is reported and skipped.
// Exit code 0 when every file succeeded, 1 when any failed, 2 on setup errors.
int RunFileBatch(WorkerOptions options, const FileBatchSpec& spec);

}  // namespace tessera::worker
