// Layers that move data without arithmetic (Concat, Crop, PixelShuffle) or
// resample it (Interp), on oneDNN: reorder, resampling_forward.
//
// Beyond DnnlOp's contract:
// - Concat (channels, or 1-D vectors end to end): one reorder per input into
//   its channels of the output; the output in the inputs' layout when they
//   share one (blocked: each with a whole number of blocks), else plain.
// - Crop: a reorder from a sub-memory view of the input (any layout) into the
//   output, in the input's layout when its readers take it, else plain.
// - Interp: nearest (integer scale factors, where ncnn's truncated index and
//   oneDNN's rounded half-pixel index agree — checked per shape; other scales
//   run the reference kernel) and bilinear with half-pixel centres and edge
//   clamping (align_corners = 0, which is oneDNN's only convention and ncnn's
//   default). Output in the input's layout. Bicubic has no oneDNN primitive:
//   MakeDnnlOp gives no op for it and the reference kernel runs.
// - PixelShuffle: one reorder between the input viewed as (C, r, r, H, W) (plain
//   or channels-last strides) and the output's strides for (C, H, r, W, r);
//   plain out (a blocked input is converted first).
#pragma once

#include "engine/ncnn/layer_params.h"
#include "engine/ops/dnnl_op.h"
#include "engine/ops/dnnl_support.h"

namespace tessera::engine::ops {

class DnnlConcat : public DnnlOp {
 public:
  explicit DnnlConcat(const ncnn::LayerSpec& layer) : layer_(layer) {}
  Result<Tensor> Run(const OpInputs& run) const override;

 private:
  struct Compiled;
  const ncnn::LayerSpec& layer_;
  CompiledCache<Compiled> cache_;
};

class DnnlCrop : public DnnlOp {
 public:
  explicit DnnlCrop(const ncnn::LayerSpec& layer) : layer_(layer) {}
  Result<Tensor> Run(const OpInputs& run) const override;

 private:
  struct Compiled;
  const ncnn::LayerSpec& layer_;
  CompiledCache<Compiled> cache_;
};

class DnnlInterp : public DnnlOp {
 public:
  // `layer` must be nearest (type 1) or bilinear (type 2).
  explicit DnnlInterp(const ncnn::LayerSpec& layer) : layer_(layer), params_(ncnn::InterpParams::Read(layer.params)) {}
  Result<Tensor> Run(const OpInputs& run) const override;

 private:
  struct Compiled;
  const ncnn::LayerSpec& layer_;
  const ncnn::InterpParams params_;
  CompiledCache<Compiled> cache_;
};

class DnnlPixelShuffle : public DnnlOp {
 public:
  explicit DnnlPixelShuffle(const ncnn::LayerSpec& layer) : layer_(layer) {}
  Result<Tensor> Run(const OpInputs& run) const override;
  // Plain and channels-last are read in place through strides; a blocked
  // layout would need a conversion first.
  bool ReadsLayout(size_t, Layout layout) const override {
    return layout == Layout::kPlain || layout == Layout::kChannelsLast;
  }

 private:
  struct Compiled;
  const ncnn::LayerSpec& layer_;
  CompiledCache<Compiled> cache_;
};

}  // namespace tessera::engine::ops
