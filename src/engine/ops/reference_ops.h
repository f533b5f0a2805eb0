// Plain reference kernels for every layer the supported models use, following
// ncnn's definitions (parameter ids and defaults in src/engine/ncnn/layer_params.h
// and layer_table.cpp).
// Written to be obviously correct, not fast: they are the baseline the oneDNN
// backend is tested against, and what runs when nothing faster is available.
// Accumulation is in double so results sit close to the float64 oracle.
#pragma once

#include <vector>

#include "engine/ncnn/model.h"
#include "engine/tensor.h"
#include "util/status.h"

namespace tessera::engine::ops {

// Activation as ncnn numbers it: 0 none, 1 ReLU, 2 leaky ReLU (params[0] slope),
// 3 clip (params[0] min, params[1] max), 4 sigmoid.
void ApplyActivation(int type, const std::vector<float>& params, float* data, size_t n);

Result<Tensor> Convolution(const Tensor& in, const ncnn::ParamDict& p, const ncnn::LayerWeights& w);
Result<Tensor> Deconvolution(const Tensor& in, const ncnn::ParamDict& p, const ncnn::LayerWeights& w);
Result<Tensor> InnerProduct(const Tensor& in, const ncnn::ParamDict& p, const ncnn::LayerWeights& w);
Result<Tensor> PRelu(const Tensor& in, const ncnn::LayerWeights& w);
Status PReluInPlace(Tensor* t, const ncnn::LayerWeights& w);
Result<Tensor> Eltwise(const std::vector<const Tensor*>& in, const ncnn::ParamDict& p);
Result<Tensor> BinaryOp(const std::vector<const Tensor*>& in, const ncnn::ParamDict& p);
Result<Tensor> Scale(const std::vector<const Tensor*>& in, const ncnn::ParamDict& p, const ncnn::LayerWeights& w);
Result<Tensor> Concat(const std::vector<const Tensor*>& in, const ncnn::ParamDict& p);
Result<Tensor> Crop(const std::vector<const Tensor*>& in, const ncnn::ParamDict& p);
Result<Tensor> Interp(const Tensor& in, const ncnn::ParamDict& p);
Result<Tensor> PixelShuffle(const Tensor& in, const ncnn::ParamDict& p);
Result<Tensor> GlobalAveragePool(const Tensor& in);

// What Crop keeps of in[0] (in[1], when given, is the reference blob): offsets
// and sizes along channels, height and width.
struct CropBox {
  int c0 = 0, y0 = 0, x0 = 0;
  int c = 0, h = 0, w = 0;
};
Result<CropBox> CropRegion(const std::vector<const Tensor*>& in, const ncnn::ParamDict& p);

// Interp's output size for `in`: the layer's output size, else its scales.
struct InterpSize {
  int h = 0, w = 0;
};
Result<InterpSize> InterpOutputSize(const Tensor& in, const ncnn::ParamDict& p);
// Nearest Interp's source index for each output index along one axis, as ncnn
// computes it (`vertical`: the height axis, else the width).
std::vector<int> NearestIndices(int in_size, int out_size, const ncnn::ParamDict& p, bool vertical);

// Bicubic Interp's taps along one axis (ncnn's A = -0.75): for each output
// position the first of four source indices and their four weights. Sources
// outside [0, in_size) are clamped to the edge (what ncnn's border cases amount
// to). Shared with the device backends, so their weights are these bits.
struct CubicTaps {
  std::vector<int> first;
  std::vector<float> weights;  // 4 per position
};
CubicTaps BicubicTaps(int in_size, int out_size);

// Runs one layer of any supported type.
Result<std::vector<Tensor>> ForwardLayer(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights,
                                         const std::vector<const Tensor*>& inputs);

}  // namespace tessera::engine::ops
