// Convolution and deconvolution layers on oneDNN (CPU). One object per layer:
// primitives are created once per input shape and layout and reused; weights
// are reordered into the layout the chosen primitive wants once, then kept.
// Bias, the layer's built-in activation and the layers fused into it (a PReLU,
// an Eltwise / BinaryOp residual sum) run as part of the primitive (post-ops),
// so a convolution and what follows it are one pass over memory.
//
// Winograd (oneDNN 2.6, AVX-512) takes ReLU and sum post-ops but not a leaky
// ReLU, a PReLU or a scaled sum, and its direct kernels are up to 2.3x slower
// on the 3x3 convolutions of realesrgan-x4plus's dense blocks (measured on an
// AMD EPYC). So a Winograd convolution takes the post-ops it can, a scale
// before a sum is folded into its weights, and the activations and PReLUs it
// cannot take run after it as in-place passes over its output (the "tail"):
// one more pass over memory, far cheaper than the direct algorithm's extra work.
//
// Layouts: by default oneDNN chooses the source and destination layouts for
// this CPU (tag::any): nChw8c on AVX2, nChw16c or channels-last on AVX-512. An
// input in another layout is reordered to the chosen one; the output is
// written in the chosen layout when its readers take it (else plain). With
// DnnlConvOptions::layout set, that layout is used for both, on any CPU (tests
// force each layout this way).
#pragma once

#include <optional>
#include <vector>

#include "engine/ncnn/model.h"
#include "engine/ops/dnnl_op.h"
#include "engine/ops/dnnl_support.h"
#include "engine/tensor.h"
#include "util/status.h"

namespace tessera::engine::ops {

class DnnlConvolution : public DnnlOp {
 public:
  // `layer` and `weights` must outlive this object.
  DnnlConvolution(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights, DnnlConvOptions options = {});
  ~DnnlConvolution() override;

  // Op: inputs[0] is the map; a fused residual sum adds the extra input.
  Result<Tensor> Run(const OpInputs& run) const override;
  bool Fuse(const ncnn::LayerSpec& next, const ncnn::LayerWeights& next_weights, int slot, Fusion* fusion) override;

  struct PostStep;  // one post-op of the chain (activation, PReLU, scale, sum)

 private:
  struct Compiled;  // the primitive and packed weights for one input shape and layout
  // A layer fused into this one, as post-ops after the built-in activation.
  struct FusedLayer {
    enum class Kind { kPRelu, kSum } kind = Kind::kPRelu;
    const ncnn::LayerWeights* slopes = nullptr;  // kPRelu
    float own_scale = 1.f;                       // kSum: coefficient of this convolution's result
    float other_scale = 1.f;                     // kSum: coefficient of the other input
  };

  Result<std::shared_ptr<const Compiled>> CompiledFor(const Tensor& input) const;
  // `probe_only`: the primitive's choices without its weights (Fuse's check).
  Result<std::shared_ptr<Compiled>> Compile(const Tensor& input, bool probe_only = false) const;

  const ncnn::LayerSpec& layer_;
  const ncnn::LayerWeights& weights_;
  DnnlConvOptions options_;
  bool transposed_;
  std::vector<FusedLayer> fused_;
  CompiledCache<Compiled> cache_;
};

}  // namespace tessera::engine::ops
