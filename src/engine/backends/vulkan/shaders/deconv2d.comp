// Direct deconvolution (transposed convolution), fp32, plain NCHW: one
// invocation per value of the cropped output, gathering the inputs that
// scatter onto it; bias, activation and fused layers as conv2d.comp.
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
  // Position in the uncropped output.
  const int fy = oy + p.pad_top;
  const int fx = ox + p.pad_left;
  float sum = p.has_bias != 0 ? bias[oc] : 0.0;
  const int plane = p.in_h * p.in_w;
  for (int ic = 0; ic < p.in_c; ++ic) {
    const int in_base = (b * p.in_c + ic) * plane;
    const int w_base = (oc * p.in_c + ic) * p.kh * p.kw;
    for (int ky = 0; ky < p.kh; ++ky) {
      const int ry = fy - ky * p.dh;
      if (ry < 0 || ry % p.sh != 0) continue;
      const int iy = ry / p.sh;
      if (iy >= p.in_h) continue;
      for (int kx = 0; kx < p.kw; ++kx) {
        const int rx = fx - kx * p.dw;
        if (rx < 0 || rx % p.sw != 0) continue;
        const int ix = rx / p.sw;
        if (ix >= p.in_w) continue;
        sum += wt[w_base + ky * p.kw + kx] * float(x[in_base + iy * p.in_w + ix]);
      }
    }
  }
  Finish(sum, i, b, oc);
}
