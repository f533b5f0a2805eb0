// The layers of the squeeze-and-excite blocks that turn a feature map into a
// vector and work on it, on oneDNN: global average pooling (pooling_forward,
// average over the whole map)
// and InnerProduct (inner_product_forward, bias and the built-in activation as
// part of the primitive, weights reordered once per input shape).
//
// Beyond DnnlOp's contract: both produce plain 1-D vectors. Pooling takes a
// 3-D map in either layout; InnerProduct a vector, or a plain map, flattened
// as ncnn does (a blocked map is converted first).
#pragma once

#include "engine/ops/dnnl_op.h"
#include "engine/ops/dnnl_support.h"

namespace tessera::engine::ops {

class DnnlGlobalAveragePool : public DnnlOp {
 public:
  explicit DnnlGlobalAveragePool(const ncnn::LayerSpec& layer) : layer_(layer) {}
  Result<Tensor> Run(const OpInputs& run) const override;

 private:
  struct Compiled;
  const ncnn::LayerSpec& layer_;
  CompiledCache<Compiled> cache_;
};

class DnnlInnerProduct : public DnnlOp {
 public:
  DnnlInnerProduct(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights) : layer_(layer), weights_(weights) {}
  Result<Tensor> Run(const OpInputs& run) const override;
  // The input is read as one flat vector: a 3-D map in another layout than
  // plain is converted first.
  bool ReadsLayout(size_t, Layout layout) const override { return layout == Layout::kPlain; }

 private:
  struct Compiled;
  const ncnn::LayerSpec& layer_;
  const ncnn::LayerWeights& weights_;
  CompiledCache<Compiled> cache_;
};

}  // namespace tessera::engine::ops
