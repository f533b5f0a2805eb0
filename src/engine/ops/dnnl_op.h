// The contract of a layer run on oneDNN (CPU), and the oneDNN utilities the
// engine uses outside src/engine/ops/.
//
// One DnnlOp per layer, made with the graph: it keeps the layer's parameters
// and weights by reference, creates its primitives once per input shape and
// layout, and reuses them; Run may be called from several threads at once.
// Inputs may be in any layout (engine/layout.h), 1-D vectors plain. Errors are
// values: oneDNN's exceptions stop at Run.
//
// Every layer type the supported models use has a DnnlOp, with these
// exceptions, where the reference kernel runs instead (the op itself falls
// back, so callers need not know): bicubic Interp (oneDNN 2.6 has no bicubic
// resampling; no DnnlOp at all), nearest Interp whose scale is not an integer
// (ncnn's index rounding differs from oneDNN's there), BinaryOp vector ÷ map
// (oneDNN broadcasts only the second operand, and ÷ does not commute).
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "engine/backend.h"
#include "engine/ncnn/model.h"
#include "engine/tensor.h"
#include "util/status.h"

namespace tessera::engine::ops {

// A oneDNN op reads every layout (ReadsLayout true) unless it says otherwise.
class DnnlOp : public Op {
 public:
  bool ReadsLayout(size_t index, Layout layout) const override {
    (void)index, (void)layout;
    return true;
  }
};

// The oneDNN op for `layer`, or null when its type (or parameters, e.g. bicubic
// Interp) has none. `layer` and `weights` must outlive the op.
// How convolutions are built (the backend's options).
struct DnnlConvOptions {
  std::optional<Layout> layout;  // force the activation layout (nullopt: oneDNN chooses)
  bool fuse = true;              // accept Fuse() of activations and residual sums...
  bool fuse_on_any_kernel = false;  // ...even where oneDNN would run its slow reference kernel for it (tests)
  bool winograd = false;         // ask for oneDNN's Winograd convolution where it has one (3x3, stride 1)
  // Tests: the activations and PReLUs after the chain's last sum run as passes
  // of their own after any convolution (as they do after a Winograd one), so
  // that path runs on every CPU.
  bool post_ops_after = false;
};

std::unique_ptr<DnnlOp> MakeDnnlOp(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights,
                                   const DnnlConvOptions& conv_options = {});

// A plain (block 0) copy of a tensor in any layout Tensor allows.
Result<Tensor> ToPlain(const Tensor& t);
// A copy of a 3-D tensor in `layout` (for the backend, tests and benchmarks).
Result<Tensor> ToLayout(const Tensor& t, Layout layout);

// Whether oneDNN can run on this machine (false when its CPU engine fails to start).
bool DnnlAvailable();

// Threads oneDNN's primitives use; 0 leaves the default (one per core).
void SetComputeThreads(int threads);

}  // namespace tessera::engine::ops
