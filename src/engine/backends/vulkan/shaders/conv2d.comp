// Direct convolution, fp32, plain NCHW: one invocation per output value, any
// kernel size, stride, padding and dilation, bias and activation fused, and up
// to two following layers (PReLU, a residual sum) fused as well.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "conv_common.glsl"

void main() {
  const uint i = FlatIndex();
  if (i >= p.total) return;
  const int ox = int(i % uint(p.out_w));
  uint t = i / uint(p.out_w);
  const int oy = int(t % uint(p.out_h));
  t /= uint(p.out_h);
  const int oc = int(t % uint(p.out_c));
  const int b = int(t / uint(p.out_c));
  float sum = p.has_bias != 0 ? bias[oc] : 0.0;
  const int plane = p.in_h * p.in_w;
  for (int ic = 0; ic < p.in_c; ++ic) {
    const int in_base = (b * p.in_c + ic) * plane;
    const int w_base = (oc * p.in_c + ic) * p.kh * p.kw;
    for (int ky = 0; ky < p.kh; ++ky) {
      const int sy = oy * p.sh + ky * p.dh - p.pad_top;
      if (sy < 0 || sy >= p.in_h) continue;
      for (int kx = 0; kx < p.kw; ++kx) {
        const int sx = ox * p.sw + kx * p.dw - p.pad_left;
        if (sx < 0 || sx >= p.in_w) continue;
        sum += wt[w_base + ky * p.kw + kx] * x[in_base + sy * p.in_w + sx];
      }
    }
  }
  Finish(sum, i, b, oc);
}
