// Runs an ncnn graph on a Backend (engine/backend.h), naming none: layers in
// file order (the parser guarantees every input is produced before it is used),
// each blob freed right after its last use, so peak memory is the widest cut of
// the graph, not the sum of all blobs.
//
// Built once per model: each layer gets its backend's op, or its fallback
// backend's when the first declines; an op may absorb the layer that alone
// reads its output (Op::Fuse: a convolution and its activation or residual
// sum); each op's output is written in a layout all its readers take, and a
// blob is converted only where a reader cannot read its producer's layout (or
// lives on another backend's device). Elementwise layers run in place on a blob
// nobody reads after them. Run is const and may be called from several
// threads at once.
#pragma once

#include <array>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/ncnn/model.h"
#include "engine/tensor.h"
#include "util/deadline.h"
#include "util/status.h"

namespace tessera::engine {

// What one Run() did, for benchmarks and profiling.
struct RunStats {
  uint64_t conv_flops = 0;  // multiply-adds x 2 of every convolution and deconvolution
  // Wall time spent in each layer type; fused steps count under both names
  // joined by '+', e.g. "Convolution+PReLU".
  std::map<std::string, double> ms_by_layer_type;
  // The most bytes of blobs alive at once (inputs and outputs of the layer
  // running): the run's working memory by the executor's own liveness.
  uint64_t peak_live_bytes = 0;
  int conversions = 0;  // layout conversions and transfers the run needed between ops
};

class GraphExecutor {
 public:
  // `model`, `backend` and `fallback` must outlive the executor. Layers
  // `backend` declines run on `fallback`; with none (or when it declines too)
  // Run reports the layer as kUnsupported.
  GraphExecutor(const ncnn::Model& model, Backend& backend, Backend* fallback = nullptr);
  ~GraphExecutor();

  // Feeds `input` (a plain host tensor) to the model's Input layer and returns
  // its output blob (the last layer's) as a plain host tensor. kTimeout when the
  // deadline passes between layers.
  Result<Tensor> Run(Tensor input, const Deadline& deadline, RunStats* stats = nullptr) const;
  // The same from an input already on the backend (e.g. a batch of tiles cut on
  // the device), returning the output where and as the backend holds it
  // (layout, type, batch), without a transfer to the host. Where the backend
  // records runs (Backend::BeginCapture) and every layer runs on it, the first
  // input of a shape is recorded and every later one replays the recording
  // (not with `stats`, which wants each layer run and timed).
  Result<Tensor> RunOnBackend(Tensor input, const Deadline& deadline, RunStats* stats = nullptr) const;

  // Whether every layer runs on the backend (none on the fallback).
  bool RunsWhollyOnBackend() const;

  // Each layer's Op::SavedChoice, by layer index ("" for layers without an op
  // or choice); RestoreChoices gives them back (before any Run; a list of
  // another length is ignored: it belongs to another graph).
  std::vector<std::string> SavedChoices() const;
  void RestoreChoices(const std::vector<std::string>& choices);

  // Layers absorbed into the op before them (for tests and logs).
  int fused_layers() const { return fused_layers_; }
  // "cpu onednn", or "cpu onednn (+reference for 1 layer)".
  std::string Describe() const;

 private:
  struct Step;
  void Plan();
  // Run and RunOnBackend: `input` on the host or already on the backend.
  Result<Tensor> RunSteps(Tensor input, bool output_to_host, const Deadline& deadline, RunStats* stats) const;
  // RunOnBackend through a recording of `input`'s shape, made first when there
  // is none; nullopt when the backend does not record.
  Result<std::optional<Tensor>> RunRecorded(const Tensor& input, const Deadline& deadline) const;
  using ShapeKey = std::array<int, 6>;  // dims, n, c, h, w, dtype
  std::shared_ptr<RecordedRun> FindRecorded(const ShapeKey& key) const;

  const ncnn::Model& model_;
  std::vector<Backend*> backends_;  // [0] the backend, [1] the fallback when there is one
  std::vector<std::unique_ptr<Op>> ops_;
  std::vector<Step> steps_;
  std::vector<int> last_use_;  // per blob: index of the last step reading it
  int input_blob_ = -1;
  int output_blob_ = -1;
  int fused_layers_ = 0;
  Status plan_status_;  // not ok: a layer no backend runs
  // Recorded runs by input shape, most recently used first; the edge tiles of
  // an image and a chunk's last batch make a few shapes per image size.
  static constexpr size_t kRecordedShapes = 8;
  mutable std::mutex recorded_mutex_;
  mutable std::list<std::pair<ShapeKey, std::shared_ptr<RecordedRun>>> recorded_;
};

}  // namespace tessera::engine
