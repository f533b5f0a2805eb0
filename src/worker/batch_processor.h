// Runs one decoded request: validates every image from its header, checks the
// batch against the memory budget, then decodes, processes and encodes the images
// in order — pipelined (runtime/pipeline.h: image i+1 decoded and i-1 encoded
// while i is processed) when --pipeline-depth allows and the budget holds the
// extra images in flight, else one after another. Peak memory grows with the
// largest image and the pipeline depth, not with the batch size.
// All or nothing: on any error no output is returned.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "protocol/codec.h"
#include "util/deadline.h"
#include "util/status.h"
#include "worker/device_selector.h"
#include "worker/engine_resolver.h"
#include "worker/worker_options.h"

namespace tessera::worker {

// Time spent in each stage, summed over the batch, in milliseconds. Pipelined,
// the stages overlap: pixels_ms (the wall time of all three) is less than their sum.
struct StageTimings {
  double probe_ms = 0;
  double decode_ms = 0;
  double process_ms = 0;
  double encode_ms = 0;
  double pixels_ms = 0;
  double slowest_image_ms = 0;  // sequential runs only (pipelined images overlap)
};

struct BatchOutcome {
  Status status;
  std::vector<std::vector<uint8_t>> outputs;  // one per input, in order, when ok
  StageTimings timings;
  std::string engine_description;  // e.g. "lanczos x2"
  std::string device;              // "cpu", "cuda:0"
  bool device_fell_back = false;
  uint64_t estimated_peak_bytes = 0;  // the budget check's estimate (with the pipeline's images when pipelined)
  bool pipelined = false;
  uint64_t input_pixels = 0;
  uint64_t output_pixels = 0;
};

class BatchProcessor {
 public:
  explicit BatchProcessor(const WorkerOptions& options);

  // `payload_bytes` is the size of the frame holding the request: it is already
  // in memory and counts against the budget.
  // Not const: models are loaded on first use and kept for the next requests.
  BatchOutcome Process(const protocol::Request& request, uint64_t payload_bytes, const Deadline& deadline);

  // Reports tile progress of each image processed from now on (one-shot CLI modes).
  void set_progress(engine::ProgressFn progress) { progress_ = std::move(progress); }

 private:
  const WorkerOptions& options_;
  DeviceSelector devices_;
  EngineResolver engines_;
  engine::ProgressFn progress_;
};

}  // namespace tessera::worker
