// PixelShuffle, fp32, plain NCHW (vulkan_kernels.h's PixelShufflePush): output
// channel q at (y * r + sy, x * r + sx) is input channel q * r * r + sy * r + sx
// at (y, x), as ncnn defines it.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "storage.glsl"
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Source { act_t src[]; };
layout(std430, binding = 1) writeonly buffer Destination { act_t dst[]; };

layout(push_constant) uniform Push {
  uint total;  // n * out_c * in_h * r * in_w * r
  int out_c, in_h, in_w, r;
} p;

void main() {
  const uint i = gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * 64u) + gl_GlobalInvocationID.x;
  if (i >= p.total) return;
  const int out_w = p.in_w * p.r, out_h = p.in_h * p.r;
  const int ox = int(i % uint(out_w));
  uint t = i / uint(out_w);
  const int oy = int(t % uint(out_h));
  t /= uint(out_h);
  const int q = int(t % uint(p.out_c));
  const int b = int(t / uint(p.out_c));
  const int src_c = q * p.r * p.r + (oy % p.r) * p.r + (ox % p.r);
  const int in_c = p.out_c * p.r * p.r;
  dst[i] = src[((b * in_c + src_c) * p.in_h + oy / p.r) * p.in_w + ox / p.r];
}
