// Runs an ncnn graph: layers in file order (the parser guarantees every input
// is produced before it is used), each blob freed right after its last use, so
// peak memory is the widest cut of the graph, not the sum of all blobs.
//
// Layouts (kOneDnn): a layer whose readers (through Splits) all take oneDNN's
// blocked nChw8c layout may write it, so chains of oneDNN layers run without
// reorders; a blob is converted to plain where a reference kernel or the
// caller needs it. Elementwise layers run in place on a blob nobody reads
// after them. Run is const and may be called from several threads at once.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/ncnn/model.h"
#include "engine/tensor.h"
#include "util/deadline.h"
#include "util/status.h"

namespace tessera::engine {

namespace ops {
class DnnlOp;
}

// What one Run() did, for benchmarks and profiling.
struct RunStats {
  uint64_t conv_flops = 0;  // multiply-adds x 2 of every convolution and deconvolution
  std::map<std::string, double> ms_by_layer_type;  // wall time spent in each layer type
  // The most bytes of blobs alive at once (inputs and outputs of the layer
  // running): the run's working memory by the executor's own liveness.
  uint64_t peak_live_bytes = 0;
};

// kOneDnn runs every layer on oneDNN primitives (ops/dnnl_op.h), except where
// oneDNN 2.6 has none: bicubic Interp, nearest Interp at a non-integer scale,
// BinaryOp vector ÷ map, which run the reference kernels. kReference runs
// everything on the reference kernels (ops/reference_ops.h).
enum class ComputeBackend { kReference, kOneDnn };

class GraphExecutor {
 public:
  // `model` must outlive the executor.
  GraphExecutor(const ncnn::Model& model, ComputeBackend backend = ComputeBackend::kOneDnn);
  ~GraphExecutor();

  // Feeds `input` to the model's Input layer and returns its output blob (the
  // last layer's). kTimeout when the deadline passes between layers.
  Result<Tensor> Run(Tensor input, const Deadline& deadline, RunStats* stats = nullptr) const;

  int input_blob() const { return input_blob_; }
  int output_blob() const { return output_blob_; }

 private:
  const ncnn::Model& model_;
  bool use_dnnl_;
  int input_blob_ = -1;
  int output_blob_ = -1;
  std::vector<int> last_use_;  // per blob: index of the last layer reading it
  std::vector<std::unique_ptr<ops::DnnlOp>> dnnl_ops_;  // per layer; null where the reference kernel runs
  std::vector<bool> blocked_output_;  // per layer: its readers all take oneDNN's blocked layout
};

}  // namespace tessera::engine
