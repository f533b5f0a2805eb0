// The geometry parameters of ncnn's Convolution and Deconvolution layers, read
// in one place with ncnn's ids and defaults, for every backend.
#pragma once

#include "engine/ncnn/model_graph.h"

namespace tessera::engine::ops {

struct ConvWindow {
  int num_output = 0;
  int kw = 0, kh = 0;                // kernel
  int dw = 1, dh = 1;                // dilation
  int sw = 1, sh = 1;                // stride
  int pad_left = 0, pad_right = 0, pad_top = 0, pad_bottom = 0;
  int out_pad_right = 0, out_pad_bottom = 0;  // Deconvolution only: extra output on the far side
  bool bias = false;

  int extent_w() const { return dw * (kw - 1) + 1; }
  int extent_h() const { return dh * (kh - 1) + 1; }

  static ConvWindow Read(const ncnn::ParamDict& p) {
    ConvWindow k;
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
    return k;
  }
};

}  // namespace tessera::engine::ops
