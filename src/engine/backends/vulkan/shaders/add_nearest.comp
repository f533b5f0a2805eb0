// output[q, y, x] += input[q, y / scale, x / scale] (DeviceTiling::
// AddNearestInput; vulkan_kernels.h's AddNearestPush): Real-CUGAN x4 predicts a
// residual over the nearest-upscaled input. One fp32 addition per value, as the
// host path adds it.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "storage.glsl"
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Input { act_t x[]; };
layout(std430, binding = 1) buffer Output { act_t y[]; };

layout(push_constant) uniform Push {
  uint total;  // c * in_h * scale * in_w * scale
  int in_h, in_w, scale;
} p;

void main() {
  const uint i = gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * 64u) + gl_GlobalInvocationID.x;
  if (i >= p.total) return;
  const int out_w = p.in_w * p.scale, out_h = p.in_h * p.scale;
  const int ox = int(i % uint(out_w));
  const uint t = i / uint(out_w);
  const int oy = int(t % uint(out_h));
  const int q = int(t / uint(out_h));
  y[i] = act_t(float(y[i]) + float(x[(q * p.in_h + oy / p.scale) * p.in_w + ox / p.scale]));
}
