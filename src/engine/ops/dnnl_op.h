// The contract of a layer run on oneDNN (CPU), and the oneDNN utilities the
// engine uses outside src/engine/ops/.
//
// One DnnlOp per layer, made with the graph: it keeps the layer's parameters
// and weights by reference, creates its primitives once per input shape and
// layout, and reuses them; Run may be called from several threads at once.
// Inputs may be plain or oneDNN's blocked nChw8c layout (Tensor::block), 1-D
// vectors plain. Errors are values: oneDNN's exceptions stop at Run.
//
// Every layer type the supported models use has a DnnlOp, with these
// exceptions, where the reference kernel runs instead (the op itself falls
// back, so callers need not know): bicubic Interp (oneDNN 2.6 has no bicubic
// resampling; no DnnlOp at all), nearest Interp whose scale is not an integer
// (ncnn's index rounding differs from oneDNN's there), BinaryOp vector ÷ map
// (oneDNN broadcasts only the second operand, and ÷ does not commute).
#pragma once

#include <memory>
#include <vector>

#include "engine/ncnn/model.h"
#include "engine/tensor.h"
#include "util/status.h"

namespace tessera::engine::ops {

class DnnlOp {
 public:
  virtual ~DnnlOp() = default;

  // Runs the layer on `inputs` (its bottoms, in order). `blocked_output_ok`:
  // every reader of the output takes nChw8c, so the op may write it when that
  // is its natural layout (it may also return blocked otherwise, when its input
  // was; callers convert where they need plain). `writable`: null, or
  // inputs[0] itself when the caller will not read it again; an op whose output
  // has input 0's shape and layout then computes in place and returns that
  // storage (moved out of *writable).
  virtual Result<Tensor> Run(const std::vector<const Tensor*>& inputs, bool blocked_output_ok,
                             Tensor* writable) const = 0;

  // Whether a blocked input is as cheap as a plain one (false: the op would
  // convert it to plain first, so producers should write plain).
  virtual bool TakesBlockedInput() const { return true; }
};

// The oneDNN op for `layer`, or null when its type (or parameters, e.g. bicubic
// Interp) has none. `layer` and `weights` must outlive the op.
std::unique_ptr<DnnlOp> MakeDnnlOp(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights);

// A plain (block 0) copy of a tensor in any layout Tensor allows.
Result<Tensor> ToPlain(const Tensor& t);
// A blocked (nChw8c) copy of a 3-D tensor (for tests and benchmarks).
Result<Tensor> ToBlocked(const Tensor& t);

// Whether oneDNN can run on this machine (false when its CPU engine fails to start).
bool DnnlAvailable();

// Threads oneDNN's primitives use; 0 leaves the default (one per core).
void SetComputeThreads(int threads);

}  // namespace tessera::engine::ops
