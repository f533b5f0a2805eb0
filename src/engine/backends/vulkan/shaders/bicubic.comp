// Bicubic Interp, plain NCHW (vulkan_kernels.h's BicubicPush). The taps
// come from the host, computed by the reference kernel's own code
// (ops::BicubicTaps): per output column, then per output row, five floats —
// the first of the four source indices, then the four weights. Sources past
// the edge are clamped to it; rows are summed first, as the reference does.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "storage.glsl"
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Source { act_t src[]; };
layout(std430, binding = 1) writeonly buffer Destination { act_t dst[]; };
layout(std430, binding = 2) readonly buffer Taps { float taps[]; };  // out_w x 5, then out_h x 5

layout(push_constant) uniform Push {
  uint total;  // n * c * out_h * out_w
  int in_h, in_w, out_h, out_w;
} p;

void main() {
  const uint i = gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * 64u) + gl_GlobalInvocationID.x;
  if (i >= p.total) return;
  const int ox = int(i % uint(p.out_w));
  uint t = i / uint(p.out_w);
  const int oy = int(t % uint(p.out_h));
  const int plane_index = int(t / uint(p.out_h));  // b * c + channel
  const int base = plane_index * p.in_h * p.in_w;
  const int xt = ox * 5;
  const int yt = (p.out_w + oy) * 5;
  const int x0 = int(taps[xt]);
  const int y0 = int(taps[yt]);
  float sum = 0.0;
  for (int r = 0; r < 4; ++r) {
    const int sy = clamp(y0 + r, 0, p.in_h - 1);
    float row = 0.0;
    for (int k = 0; k < 4; ++k) {
      row += taps[xt + 1 + k] * float(src[base + sy * p.in_w + clamp(x0 + k, 0, p.in_w - 1)]);
    }
    sum += taps[yt + 1 + r] * row;
  }
  dst[i] = act_t(sum);
}
