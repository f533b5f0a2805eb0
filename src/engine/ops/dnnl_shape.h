// Layers that move data without arithmetic (Concat, Crop, PixelShuffle) or
// resample it (Interp), on oneDNN: reorder, resampling_forward.
//
// Beyond DnnlOp's contract:
// - Concat (channels, or 1-D vectors end to end): one reorder per input into
//   its channels of the output; blocked output when every input is blocked
//   with a whole number of groups of 8 channels, else plain.
// - Crop: a reorder from a sub-memory view of the input (any layout) into the
//   output, blocked when `blocked_output_ok`, else plain.
// - Interp: nearest (integer scale factors, where ncnn's truncated index and
//   oneDNN's rounded half-pixel index agree — checked per shape; other scales
//   run the reference kernel) and bilinear with half-pixel centres and edge
//   clamping (align_corners = 0, which is oneDNN's only convention and ncnn's
//   default). Output in the input's layout. Bicubic has no oneDNN primitive:
//   MakeDnnlOp gives no op for it and the reference kernel runs.
// - PixelShuffle: one reorder between the input viewed as (C, r, r, H, W) and
//   the output's strides for (C, H, r, W, r); plain in and out (a blocked input
//   is converted first, so producers should not write blocked for it).
#pragma once

#include "engine/ops/dnnl_op.h"
#include "engine/ops/dnnl_support.h"

namespace tessera::engine::ops {

class DnnlConcat : public DnnlOp {
 public:
  explicit DnnlConcat(const ncnn::LayerSpec& layer) : layer_(layer) {}
  Result<Tensor> Run(const std::vector<const Tensor*>& inputs, bool blocked_output_ok, Tensor* writable) const override;

 private:
  struct Compiled;
  const ncnn::LayerSpec& layer_;
  CompiledCache<Compiled> cache_;
};

class DnnlCrop : public DnnlOp {
 public:
  explicit DnnlCrop(const ncnn::LayerSpec& layer) : layer_(layer) {}
  Result<Tensor> Run(const std::vector<const Tensor*>& inputs, bool blocked_output_ok, Tensor* writable) const override;

 private:
  struct Compiled;
  const ncnn::LayerSpec& layer_;
  CompiledCache<Compiled> cache_;
};

class DnnlInterp : public DnnlOp {
 public:
  // `layer` must be nearest (type 1) or bilinear (type 2).
  explicit DnnlInterp(const ncnn::LayerSpec& layer) : layer_(layer) {}
  Result<Tensor> Run(const std::vector<const Tensor*>& inputs, bool blocked_output_ok, Tensor* writable) const override;

 private:
  struct Compiled;
  const ncnn::LayerSpec& layer_;
  CompiledCache<Compiled> cache_;
};

class DnnlPixelShuffle : public DnnlOp {
 public:
  explicit DnnlPixelShuffle(const ncnn::LayerSpec& layer) : layer_(layer) {}
  Result<Tensor> Run(const std::vector<const Tensor*>& inputs, bool blocked_output_ok, Tensor* writable) const override;
  bool TakesBlockedInput() const override { return false; }

 private:
  struct Compiled;
  const ncnn::LayerSpec& layer_;
  CompiledCache<Compiled> cache_;
};

}  // namespace tessera::engine::ops
