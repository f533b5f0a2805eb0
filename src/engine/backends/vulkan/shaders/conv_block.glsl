// The blocked direct convolution behind conv3x3.comp and conv1x1.comp: stride
// 1, dilation 1, a K x K kernel (K a compile-time constant, defined by the
// including file with XB and OCB), any non-negative padding, fp32 or fp16
// activations (storage.glsl), plain NCHW, the same epilogue as conv2d.comp (conv_common.glsl's Finish).
//
// Why it is faster than conv2d.comp: one invocation computes a block of XB
// consecutive outputs of one row for OCB output channels. For each input
// channel and kernel row it reads the XB + K - 1 input values the block needs
// once and uses each for up to K * OCB multiply-adds; and every invocation of
// a workgroup works on the same OCB channels (the channel block comes from the
// workgroup's index alone), so the weights' indices are uniform across the
// workgroup: a driver reads each weight once per workgroup (llvmpipe: one
// scalar load broadcast to its SIMD lanes; GPUs: a scalar or broadcast load),
// not once per invocation. Inputs stay in global memory: neighbouring
// invocations read neighbouring values, which caches serve.
//
// Dispatch: push.total = 64 * spatial groups * channel blocks, where a
// spatial group is 64 blocks of (batch, row, XB-wide column block) and the
// channel blocks are ceil(out_c / OCB) (vulkan_convolution.cpp's
// BlockedInvocations). Partial blocks compute clamped copies they do not write.
#include "conv_common.glsl"

const int kRow = XB + K - 1;  // input values one kernel row of a block reads

void main() {
  // Uniform across the workgroup: everything derived from `group`.
  const uint group = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  const int x_blocks = (p.out_w + XB - 1) / XB;
  const uint spatial = uint(p.n * p.out_h * x_blocks);
  const uint spatial_groups = (spatial + 63u) / 64u;
  const uint channel_blocks = uint((p.out_c + OCB - 1) / OCB);
  if (group >= spatial_groups * channel_blocks) return;
  const int oc0 = int(group / spatial_groups) * OCB;
  const int count = min(OCB, p.out_c - oc0);
  const uint s = (group % spatial_groups) * 64u + gl_LocalInvocationID.x;
  if (s >= spatial) return;
  const int ox0 = int(s % uint(x_blocks)) * XB;
  const uint t = s / uint(x_blocks);
  const int oy = int(t % uint(p.out_h));
  const int b = int(t / uint(p.out_h));

  float acc[OCB][XB];
  for (int j = 0; j < OCB; ++j) {
    const float start = p.has_bias != 0 ? bias[oc0 + min(j, count - 1)] : 0.0;
    for (int i = 0; i < XB; ++i) acc[j][i] = start;
  }
  const int x_origin = ox0 - p.pad_left;
  const int y_origin = oy - p.pad_top;
  // Which of the row's columns lie inside the input (the others read as 0).
  bool inside[kRow];
  for (int c = 0; c < kRow; ++c) inside[c] = x_origin + c >= 0 && x_origin + c < p.in_w;
  const int ky_begin = max(0, -y_origin);
  const int ky_end = min(K, p.in_h - y_origin);
  const int plane = p.in_h * p.in_w;
  const int taps = K * K;
  for (int ic = 0; ic < p.in_c; ++ic) {
    const int in_base = (b * p.in_c + ic) * plane;
    for (int ky = ky_begin; ky < ky_end; ++ky) {
      const int row = in_base + (y_origin + ky) * p.in_w + x_origin;
      float v[kRow];
      // An outside column reads a valid address (the plane's first value) and
      // is replaced by 0: no load outside the buffer, no branch.
      for (int c = 0; c < kRow; ++c) v[c] = inside[c] ? float(x[inside[c] ? row + c : in_base]) : 0.0;
      for (int j = 0; j < OCB; ++j) {
        const int w_row = ((oc0 + min(j, count - 1)) * p.in_c + ic) * taps + ky * K;
        for (int kx = 0; kx < K; ++kx) {
          const float w = wt[w_row + kx];
          for (int i = 0; i < XB; ++i) acc[j][i] += v[i + kx] * w;
        }
      }
    }
  }
  const int out_plane = p.out_h * p.out_w;
  const int first = ((b * p.out_c + oc0) * p.out_h + oy) * p.out_w + ox0;
  const int columns = min(XB, p.out_w - ox0);
  for (int j = 0; j < count; ++j) {
    for (int i = 0; i < columns; ++i) Finish(acc[j][i], uint(first + j * out_plane + i), b, oc0 + j);
  }
}
