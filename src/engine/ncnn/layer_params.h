// Typed parameters of the ncnn layers whose parameters the engine reads in more
// than one place: each struct reads its layer's ids with ncnn's defaults, once,
// for the model checker and every backend's kernels alike.
#pragma once

#include <algorithm>

#include <optional>
#include <vector>

#include "engine/ncnn/model_graph.h"

namespace tessera::engine::ncnn {

// Convolution and Deconvolution.
struct ConvParams {
  int num_output = 0;
  int kw = 0, kh = 0;                                            // kernel
  int dw = 1, dh = 1;                                            // dilation
  int sw = 1, sh = 1;                                            // stride
  int pad_left = 0, pad_right = 0, pad_top = 0, pad_bottom = 0;  // negative: ncnn's 'same' modes
  int out_pad_right = 0, out_pad_bottom = 0;                     // Deconvolution only: extra output on the far side
  bool bias = false;
  int weight_data_size = 0;
  int activation_type = 0;  // 0 none, 1 ReLU, 2 leaky ReLU, 3 clip, 4 sigmoid
  std::vector<float> activation_params;

  int extent_w() const { return dw * (kw - 1) + 1; }
  int extent_h() const { return dh * (kh - 1) + 1; }

  // A deconvolution's output before its pads are cropped.
  int DeconvFullW(int in_w) const { return (in_w - 1) * sw + extent_w() + out_pad_right; }
  int DeconvFullH(int in_h) const { return (in_h - 1) * sh + extent_h() + out_pad_bottom; }
  // The output's size for an input of in_w x in_h, as the reference kernels
  // compute it (ops/reference_conv.cpp); 0 when the padded input is smaller
  // than the kernel's window (a convolution) or the pads crop everything (a
  // deconvolution). Non-negative pads only: ncnn's "same" modes are not sizes.
  int OutW(int in_w, bool deconvolution) const {
    if (deconvolution) return std::max(0, DeconvFullW(in_w) - pad_left - pad_right);
    const int padded = in_w + pad_left + pad_right;
    return padded < extent_w() ? 0 : (padded - extent_w()) / sw + 1;
  }
  int OutH(int in_h, bool deconvolution) const {
    if (deconvolution) return std::max(0, DeconvFullH(in_h) - pad_top - pad_bottom);
    const int padded = in_h + pad_top + pad_bottom;
    return padded < extent_h() ? 0 : (padded - extent_h()) / sh + 1;
  }

  static ConvParams Read(const ParamDict& p) {
    ConvParams k;
    k.num_output = p.GetInt(0, 0);
    k.kw = p.GetInt(1, 0);
    k.kh = p.GetInt(11, k.kw);
    k.dw = p.GetInt(2, 1);
    k.dh = p.GetInt(12, k.dw);
    k.sw = p.GetInt(3, 1);
    k.sh = p.GetInt(13, k.sw);
    k.pad_left = p.GetInt(4, 0);
    k.pad_right = p.GetInt(15, k.pad_left);
    k.pad_top = p.GetInt(14, k.pad_left);
    k.pad_bottom = p.GetInt(16, k.pad_top);
    k.out_pad_right = p.GetInt(18, 0);
    k.out_pad_bottom = p.GetInt(19, k.out_pad_right);
    k.bias = p.GetInt(5, 0) != 0;
    k.weight_data_size = p.GetInt(6, 0);
    k.activation_type = p.GetInt(9, 0);
    k.activation_params = p.GetFloats(10);
    return k;
  }
};

struct InnerProductParams {
  int num_output = 0;
  bool bias = false;
  int weight_data_size = 0;
  int activation_type = 0;  // as ConvParams
  std::vector<float> activation_params;

  static InnerProductParams Read(const ParamDict& p) {
    return {p.GetInt(0, 0), p.GetInt(1, 0) != 0, p.GetInt(2, 0), p.GetInt(9, 0), p.GetFloats(10)};
  }
};

struct EltwiseParams {
  enum Op { kProduct = 0, kSum = 1, kMax = 2 };
  int op = kSum;
  std::vector<float> coeffs;  // sum only; empty: all 1

  static EltwiseParams Read(const ParamDict& p) { return {p.GetInt(0, 1), p.GetFloats(1)}; }
};

struct BinaryOpParams {
  enum Op { kAdd = 0, kSub = 1, kMul = 2, kDiv = 3 };
  int op = kAdd;
  bool with_scalar = false;  // the second operand is `scalar`, not a blob
  float scalar = 0.f;

  static BinaryOpParams Read(const ParamDict& p) { return {p.GetInt(0, 0), p.GetInt(1, 0) != 0, p.GetFloat(2, 0.f)}; }
};

struct InterpParams {
  enum Type { kNearest = 1, kBilinear = 2, kBicubic = 3 };
  int resize_type = 0;
  float height_scale = 1.f, width_scale = 1.f;
  int output_height = 0, output_width = 0;  // 0: from the scales
  bool align_corner = false;

  static InterpParams Read(const ParamDict& p) {
    return {p.GetInt(0, 0), p.GetFloat(1, 1.f), p.GetFloat(2, 1.f),
            p.GetInt(3, 0), p.GetInt(4, 0),     p.GetInt(6, 0) != 0};
  }
};

// Crop by offsets (and sizes, or the size of a reference blob), or by
// starts/ends/axes when `starts` is given.
struct CropParams {
  int woffset = 0, hoffset = 0, coffset = 0;
  std::optional<int> outw, outh, outc;  // absent: to the end of the axis
  bool by_axes = false;
  std::vector<int> starts, ends, axes;

  static CropParams Read(const ParamDict& p) {
    CropParams c;
    c.woffset = p.GetInt(0, 0);
    c.hoffset = p.GetInt(1, 0);
    c.coffset = p.GetInt(2, 0);
    c.outw = Scalar(p, 3);
    c.outh = Scalar(p, 4);
    c.outc = Scalar(p, 5);
    c.by_axes = p.Has(9);
    c.starts = p.GetInts(9);
    c.ends = p.GetInts(10);
    c.axes = p.GetInts(11);
    return c;
  }

 private:
  static std::optional<int> Scalar(const ParamDict& p, int id) {
    auto it = p.all().find(id);
    if (it == p.all().end() || it->second.is_array) return std::nullopt;
    return p.GetInt(id, 0);
  }
};

}  // namespace tessera::engine::ncnn
