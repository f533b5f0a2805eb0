// PReLU, Eltwise, BinaryOp and Scale on oneDNN: prelu_forward, sum with scales,
// binary (with per-channel and scalar broadcasting, and a binary post-op for
// Scale's bias).
//
// Beyond DnnlOp's contract: the output has the shape and layout of input 0 (of
// the feature map, when a BinaryOp broadcasts a vector against a map given
// first); an input in another layout than that is converted to it first.
// Padding channels of a blocked output stay zero. Shapes are checked as the
// reference kernels check them, with the same messages (kInvalid).
#pragma once

#include "engine/ncnn/layer_params.h"
#include "engine/ops/dnnl_op.h"
#include "engine/ops/dnnl_support.h"

namespace tessera::engine::ops {

// PReLU: one slope per channel (per element of a 1-D input), or one for all.
class DnnlPRelu : public DnnlOp {
 public:
  DnnlPRelu(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights) : layer_(layer), weights_(weights) {}
  Result<Tensor> Run(const OpInputs& in) const override;

 private:
  struct Compiled;
  const ncnn::LayerSpec& layer_;
  const ncnn::LayerWeights& weights_;
  CompiledCache<Compiled> cache_;
};

// Eltwise: sum with optional coefficients (sum), product and max (binary, one
// after the other for more than two inputs). All inputs of one shape.
class DnnlEltwise : public DnnlOp {
 public:
  explicit DnnlEltwise(const ncnn::LayerSpec& layer)
      : layer_(layer), params_(ncnn::EltwiseParams::Read(layer.params)) {}
  Result<Tensor> Run(const OpInputs& in) const override;

 private:
  struct Compiled;
  const ncnn::LayerSpec& layer_;
  const ncnn::EltwiseParams params_;
  CompiledCache<Compiled> cache_;
};

// BinaryOp add, sub, mul, div: two tensors of one shape, a map and a vector of
// its channel count (either order), or one tensor and the layer's scalar.
class DnnlBinaryOp : public DnnlOp {
 public:
  explicit DnnlBinaryOp(const ncnn::LayerSpec& layer)
      : layer_(layer), params_(ncnn::BinaryOpParams::Read(layer.params)) {}
  Result<Tensor> Run(const OpInputs& in) const override;

 private:
  struct Compiled;
  const ncnn::LayerSpec& layer_;
  const ncnn::BinaryOpParams params_;
  CompiledCache<Compiled> cache_;
};

// Scale: per-channel factors from the weights or from a second (vector) input,
// plus the layer's bias when it has one.
class DnnlScale : public DnnlOp {
 public:
  DnnlScale(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights) : layer_(layer), weights_(weights) {}
  Result<Tensor> Run(const OpInputs& in) const override;

 private:
  struct Compiled;
  const ncnn::LayerSpec& layer_;
  const ncnn::LayerWeights& weights_;
  CompiledCache<Compiled> cache_;
};

}  // namespace tessera::engine::ops
