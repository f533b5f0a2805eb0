#include "engine/ops/dnnl_op.h"

#include <omp.h>

#include "engine/ncnn/layer_params.h"
#include "engine/ops/dnnl_convolution.h"
#include "engine/ops/dnnl_dense.h"
#include "engine/ops/dnnl_elementwise.h"
#include "engine/ops/dnnl_shape.h"
#include "engine/ops/dnnl_support.h"

namespace tessera::engine::ops {

std::unique_ptr<DnnlOp> MakeDnnlOp(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights,
                                   const DnnlConvOptions& conv_options) {
  using ncnn::LayerKind;
  const ncnn::ParamDict& p = layer.params;
  switch (layer.kind) {
    case LayerKind::kConvolution:
    case LayerKind::kDeconvolution: return std::make_unique<DnnlConvolution>(layer, weights, conv_options);
    case LayerKind::kPRelu: return std::make_unique<DnnlPRelu>(layer, weights);
    case LayerKind::kEltwise: return std::make_unique<DnnlEltwise>(layer);
    case LayerKind::kBinaryOp: return std::make_unique<DnnlBinaryOp>(layer);
    case LayerKind::kScale: return std::make_unique<DnnlScale>(layer, weights);
    case LayerKind::kConcat: return p.GetInt(0, 0) == 0 ? std::make_unique<DnnlConcat>(layer) : nullptr;
    case LayerKind::kCrop: return std::make_unique<DnnlCrop>(layer);
    case LayerKind::kInterp: {
      // Bicubic has no oneDNN primitive; align_corners = 1 is not oneDNN's convention.
      const ncnn::InterpParams interp = ncnn::InterpParams::Read(p);
      const bool runs = (interp.resize_type == ncnn::InterpParams::kNearest ||
                         interp.resize_type == ncnn::InterpParams::kBilinear) && !interp.align_corner;
      return runs ? std::make_unique<DnnlInterp>(layer) : nullptr;
    }
    case LayerKind::kPixelShuffle: return std::make_unique<DnnlPixelShuffle>(layer);
    case LayerKind::kPooling: return std::make_unique<DnnlGlobalAveragePool>(layer);
    case LayerKind::kInnerProduct: return std::make_unique<DnnlInnerProduct>(layer, weights);
    case LayerKind::kInput:
    case LayerKind::kSplit:
    case LayerKind::kUnknown: return nullptr;
  }
  return nullptr;
}

Result<Tensor> ToPlain(const Tensor& t) {
  if (t.layout == Layout::kPlain) return t;
  return ToLayout(t, Layout::kPlain);
}

Result<Tensor> ToLayout(const Tensor& t, Layout layout) {
  if (t.dims != 3 && layout != Layout::kPlain) return InvalidError("only 3-D tensors have another layout than plain");
  try {
    return Relayout(t, layout);
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, "reorder to " + std::string(LayoutName(layout)));
  }
}

bool DnnlAvailable() {
  try {
    (void)CpuEngine();
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

void SetComputeThreads(int threads) {
  // This oneDNN build runs on OpenMP, so its thread count is OpenMP's.
  if (threads > 0) omp_set_num_threads(threads);
}

}  // namespace tessera::engine::ops
