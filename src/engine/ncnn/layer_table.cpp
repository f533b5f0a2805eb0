#include "engine/ncnn/layer_table.h"

#include <algorithm>
#include <array>
#include <initializer_list>

#include "engine/ncnn/layer_params.h"
#include "engine/ncnn/param_parser.h"

namespace tessera::engine::ncnn {
namespace {

constexpr uint32_t Ids(std::initializer_list<int> ids) {
  uint32_t mask = 0;
  for (int id : ids) mask |= 1u << id;
  return mask;
}

bool OneOf(int v, std::initializer_list<int> allowed) {
  return std::find(allowed.begin(), allowed.end(), v) != allowed.end();
}

size_t Count(int n) { return static_cast<size_t>(std::max(0, n)); }

std::string CheckActivation(int type) {
  return OneOf(type, {0, 1, 2, 3, 4}) ? "" : "activation_type " + std::to_string(type) + " not supported";
}

std::string CheckConv(const LayerSpec& layer) {
  const ConvParams k = ConvParams::Read(layer.params);
  if (k.num_output <= 0) return "num_output must be positive";
  if (k.weight_data_size <= 0) return "weight_data_size must be positive";
  if (std::string a = CheckActivation(k.activation_type); !a.empty()) return a;
  if (k.kw <= 0 || k.kh <= 0 || k.sw <= 0 || k.sh <= 0 || k.dw <= 0 || k.dh <= 0) {
    return "kernel, stride and dilation must be positive";
  }
  if (k.pad_left < 0) return "negative ('same') padding modes are not supported";
  // In 64 bits, one factor at a time: three ints from a file may overflow
  // (and reach 0). A product above weight_data_size cannot divide it.
  const int64_t per_row = static_cast<int64_t>(k.num_output) * k.kw;
  if (per_row > k.weight_data_size || k.weight_data_size % (per_row * k.kh) != 0) {
    return "weight_data_size is not a multiple of num_output x kernel size";
  }
  return "";
}

WeightArrays ConvWeights(const ParamDict& p) {
  const ConvParams k = ConvParams::Read(p);
  return {Count(k.weight_data_size), WeightEncoding::kTagged, "weight", k.bias ? Count(k.num_output) : 0};
}

std::string CheckInnerProduct(const LayerSpec& layer) {
  const InnerProductParams ip = InnerProductParams::Read(layer.params);
  if (ip.num_output <= 0) return "num_output must be positive";
  if (ip.weight_data_size <= 0) return "weight_data_size must be positive";
  return CheckActivation(ip.activation_type);
}

WeightArrays InnerProductWeights(const ParamDict& p) {
  const InnerProductParams ip = InnerProductParams::Read(p);
  return {Count(ip.weight_data_size), WeightEncoding::kTagged, "weight", ip.bias ? Count(ip.num_output) : 0};
}

WeightArrays PReluWeights(const ParamDict& p) {
  return {static_cast<size_t>(std::max(1, p.GetInt(0, 0))), WeightEncoding::kRawFloat, "slope", 0};
}

std::string CheckEltwise(const LayerSpec& layer) {
  return OneOf(EltwiseParams::Read(layer.params).op, {0, 1, 2}) ? "" : "Eltwise op_type not supported";
}

std::string CheckBinaryOp(const LayerSpec& layer) {
  return OneOf(BinaryOpParams::Read(layer.params).op, {0, 1, 2, 3}) ? "" : "BinaryOp op_type not supported";
}

// Scale's size -233: the scales come from a second input blob, not the .bin.
constexpr int kScaleFromBlob = -233;

std::string CheckScale(const LayerSpec& layer) {
  const int size = layer.params.GetInt(0, 0);
  if (size == kScaleFromBlob && layer.bottoms.size() != 2) return "Scale -233 needs a second input";
  if (size != kScaleFromBlob && size <= 0) return "scale_data_size must be positive or -233";
  return "";
}

WeightArrays ScaleWeights(const ParamDict& p) {
  const int size = p.GetInt(0, 0);
  if (size == kScaleFromBlob) return {};
  return {Count(size), WeightEncoding::kRawFloat, "scale", p.GetInt(1, 0) != 0 ? Count(size) : 0};
}

std::string CheckConcat(const LayerSpec& layer) {
  return layer.params.GetInt(0, 0) == 0 ? "" : "only channel concatenation (axis 0) is supported";
}

std::string CheckInterp(const LayerSpec& layer) {
  return OneOf(InterpParams::Read(layer.params).resize_type, {1, 2, 3}) ? "" : "Interp resize_type not supported";
}

std::string CheckPixelShuffle(const LayerSpec& layer) {
  const ParamDict& p = layer.params;
  return p.GetInt(0, 1) > 0 && p.GetInt(1, 0) == 0 ? "" : "PixelShuffle mode not supported";
}

std::string CheckPooling(const LayerSpec& layer) {
  const ParamDict& p = layer.params;
  return p.GetInt(0, 0) == 1 && p.GetInt(4, 0) == 1 ? "" : "only global average pooling is supported";
}

constexpr Arity kOne{1, 1};
constexpr Arity kMany{1, kMaxLayerIo};

// In LayerKind order, starting at kInput.
const std::array<LayerInfo, 14> kTable = {{
    {LayerKind::kInput, "Input", Ids({0, 1, 2}), {0, 0}, kOne, true, nullptr, nullptr},
    {LayerKind::kSplit, "Split", 0, kOne, kMany, true, nullptr, nullptr},
    {LayerKind::kConvolution, "Convolution", Ids({0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 14, 15, 16}), kOne, kOne,
     false, CheckConv, ConvWeights},
    {LayerKind::kDeconvolution, "Deconvolution", Ids({0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19}),
     kOne, kOne, false, CheckConv, ConvWeights},
    {LayerKind::kPRelu, "PReLU", Ids({0}), kOne, kOne, false, nullptr, PReluWeights},
    {LayerKind::kEltwise, "Eltwise", Ids({0, 1}), {2, kMaxLayerIo}, kOne, false, CheckEltwise, nullptr},
    {LayerKind::kBinaryOp, "BinaryOp", Ids({0, 1, 2}), {1, 2}, kOne, false, CheckBinaryOp, nullptr},
    {LayerKind::kScale, "Scale", Ids({0, 1}), {1, 2}, kOne, false, CheckScale, ScaleWeights},
    {LayerKind::kConcat, "Concat", Ids({0}), kMany, kOne, false, CheckConcat, nullptr},
    {LayerKind::kCrop, "Crop", Ids({0, 1, 2, 3, 4, 5, 9, 10, 11}), {1, 2}, kOne, false, nullptr, nullptr},
    {LayerKind::kInterp, "Interp", Ids({0, 1, 2, 3, 4, 6}), kOne, kOne, false, CheckInterp, nullptr},
    {LayerKind::kPixelShuffle, "PixelShuffle", Ids({0, 1}), kOne, kOne, false, CheckPixelShuffle, nullptr},
    {LayerKind::kPooling, "Pooling", Ids({0, 4}), kOne, kOne, false, CheckPooling, nullptr},
    {LayerKind::kInnerProduct, "InnerProduct", Ids({0, 1, 2, 9, 10}), kOne, kOne, false, CheckInnerProduct,
     InnerProductWeights},
}};

}  // namespace

std::span<const LayerInfo> LayerTable() { return kTable; }

LayerKind KindOf(std::string_view type) {
  for (const LayerInfo& info : kTable) {
    if (info.type == type) return info.kind;
  }
  return LayerKind::kUnknown;
}

const LayerInfo* InfoOf(LayerKind kind) {
  const size_t index = static_cast<size_t>(kind);
  if (index == 0 || index > kTable.size()) return nullptr;
  return &kTable[index - 1];
}

WeightArrays WeightArraysOf(const LayerSpec& layer) {
  const LayerInfo* info = InfoOf(layer.kind);
  if (info == nullptr || info->weights == nullptr) return {};
  return info->weights(layer.params);
}

}  // namespace tessera::engine::ncnn
