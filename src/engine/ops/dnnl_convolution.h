// Convolution and deconvolution layers on oneDNN (CPU). One object per layer:
// primitives are created once per input shape and reused; weights are reordered
// into the layout the chosen primitive wants once per shape, then kept. Bias and
// the layer's built-in activation run as part of the primitive (post-ops).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "engine/ncnn/model.h"
#include "engine/ops/dnnl_op.h"
#include "engine/tensor.h"
#include "util/status.h"

namespace tessera::engine::ops {

class DnnlConvolution : public DnnlOp {
 public:
  // `layer` and `weights` must outlive this object.
  DnnlConvolution(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights);
  ~DnnlConvolution();

  // Accepts plain or nChw8c input; returns nChw8c when the primitive writes
  // that layout and `blocked_output_ok`, plain otherwise.
  Result<Tensor> Run(const Tensor& input, bool blocked_output_ok = false) const;
  // DnnlOp: the same on inputs[0] (never in place).
  Result<Tensor> Run(const std::vector<const Tensor*>& inputs, bool blocked_output_ok, Tensor* writable) const override;

 private:
  struct Compiled;  // the primitive and packed weights for one input shape
  Result<std::shared_ptr<Compiled>> CompileFor(int channels, int height, int width) const;

  const ncnn::LayerSpec& layer_;
  const ncnn::LayerWeights& weights_;
  bool transposed_;
  mutable std::mutex mutex_;
  mutable std::map<std::pair<int, int>, std::shared_ptr<Compiled>> compiled_;  // by (height, width)
};

}  // namespace tessera::engine::ops
