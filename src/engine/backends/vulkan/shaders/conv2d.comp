// Direct convolution, fp32, plain NCHW: any kernel size, stride, padding and
// dilation, bias and activation fused, and up to two following layers (PReLU,
// a residual sum) fused as well. One invocation computes one output position
// for 4 consecutive output channels (the last group may hold fewer): each
// input value is read once for the 4, which is what bounds a direct
// convolution's speed (the push constant `total` counts invocations).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "conv_common.glsl"

const int kChannels = 4;

void main() {
  const uint i = FlatIndex();
  if (i >= p.total) return;
  const int ox = int(i % uint(p.out_w));
  uint t = i / uint(p.out_w);
  const int oy = int(t % uint(p.out_h));
  t /= uint(p.out_h);
  const int groups = (p.out_c + kChannels - 1) / kChannels;
  const int oc0 = int(t % uint(groups)) * kChannels;
  const int b = int(t / uint(groups));
  const int count = min(kChannels, p.out_c - oc0);
  const int taps = p.kh * p.kw;
  // Weights of the group's other channels, clamped to the last one that
  // exists (a partial group computes copies it does not write).
  const int channel_stride = p.in_c * taps;
  const ivec4 w_offset = ivec4(0, min(1, count - 1), min(2, count - 1), min(3, count - 1)) * channel_stride;
  vec4 sum = vec4(0.0);
  if (p.has_bias != 0) {
    sum = vec4(bias[oc0], bias[oc0 + min(1, count - 1)],
               bias[oc0 + min(2, count - 1)], bias[oc0 + min(3, count - 1)]);
  }
  // The kernel rows and columns that fall inside the input.
  const int y_origin = oy * p.sh - p.pad_top;
  const int x_origin = ox * p.sw - p.pad_left;
  const int ky_begin = y_origin >= 0 ? 0 : (-y_origin + p.dh - 1) / p.dh;
  // (A negative distance to the far edge means no row: truncating division would say one.)
  const int ky_end = p.in_h - 1 - y_origin < 0 ? 0 : min(p.kh, (p.in_h - 1 - y_origin) / p.dh + 1);
  const int kx_begin = x_origin >= 0 ? 0 : (-x_origin + p.dw - 1) / p.dw;
  const int kx_end = p.in_w - 1 - x_origin < 0 ? 0 : min(p.kw, (p.in_w - 1 - x_origin) / p.dw + 1);
  const int plane = p.in_h * p.in_w;
  for (int ic = 0; ic < p.in_c; ++ic) {
    const int in_base = (b * p.in_c + ic) * plane;
    const int w_base = (oc0 * p.in_c + ic) * taps;
    for (int ky = ky_begin; ky < ky_end; ++ky) {
      const int row = in_base + (y_origin + ky * p.dh) * p.in_w + x_origin;
      const int w_row = w_base + ky * p.kw;
      for (int kx = kx_begin; kx < kx_end; ++kx) {
        const float v = float(x[row + kx * p.dw]);
        const int w = w_row + kx;
        sum += v * vec4(wt[w + w_offset.x], wt[w + w_offset.y], wt[w + w_offset.z], wt[w + w_offset.w]);
      }
    }
  }
  const int out_plane = p.out_h * p.out_w;
  const uint first = uint(((b * p.out_c + oc0) * p.out_h + oy) * p.out_w + ox);
  for (int j = 0; j < count; ++j) Finish(sum[j], first + uint(j * out_plane), b, oc0 + j);
}
