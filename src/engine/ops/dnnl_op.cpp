#include "engine/ops/dnnl_op.h"

#include <omp.h>

#include "engine/ops/dnnl_convolution.h"
#include "engine/ops/dnnl_dense.h"
#include "engine/ops/dnnl_elementwise.h"
#include "engine/ops/dnnl_shape.h"
#include "engine/ops/dnnl_support.h"

namespace tessera::engine::ops {

std::unique_ptr<DnnlOp> MakeDnnlOp(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights,
                                   const DnnlConvOptions& conv_options) {
  const std::string& t = layer.type;
  const ncnn::ParamDict& p = layer.params;
  if (t == "Convolution" || t == "Deconvolution") return std::make_unique<DnnlConvolution>(layer, weights, conv_options);
  if (t == "PReLU") return std::make_unique<DnnlPRelu>(layer, weights);
  if (t == "Eltwise") return std::make_unique<DnnlEltwise>(layer);
  if (t == "BinaryOp") return std::make_unique<DnnlBinaryOp>(layer);
  if (t == "Scale") return std::make_unique<DnnlScale>(layer, weights);
  if (t == "Concat" && p.GetInt(0, 0) == 0) return std::make_unique<DnnlConcat>(layer);
  if (t == "Crop") return std::make_unique<DnnlCrop>(layer);
  // Bicubic has no oneDNN primitive; align_corners = 1 is not oneDNN's convention.
  if (t == "Interp" && (p.GetInt(0, 0) == 1 || p.GetInt(0, 0) == 2) && p.GetInt(6, 0) == 0) {
    return std::make_unique<DnnlInterp>(layer);
  }
  if (t == "PixelShuffle") return std::make_unique<DnnlPixelShuffle>(layer);
  if (t == "Pooling") return std::make_unique<DnnlGlobalAveragePool>(layer);
  if (t == "InnerProduct") return std::make_unique<DnnlInnerProduct>(layer, weights);
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
