// Global average pooling, plain NCHW (vulkan_kernels.h's GlobalPoolPush):
// one 64-wide workgroup per channel of each item; each invocation sums a strided
// share of the plane, then the group adds the 64 partial sums pairwise (closer
// to the reference's double sum than one long fp32 sum) and divides once.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "storage.glsl"
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Input { act_t x[]; };
layout(std430, binding = 1) writeonly buffer Output { act_t y[]; };

layout(push_constant) uniform Push {
  uint total;   // 64 invocations per plane: 64 * n * c
  uint planes;  // n * c
  uint plane;   // h * w
} p;

shared float partial[64];

void main() {
  // Uniform over the group: a group past the last plane leaves as a whole.
  const uint group = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (group >= p.planes) return;
  const uint lane = gl_LocalInvocationID.x;
  const uint base = group * p.plane;
  float sum = 0.0;
  for (uint k = lane; k < p.plane; k += 64u) sum += float(x[base + k]);
  partial[lane] = sum;
  barrier();
  for (uint width = 32u; width > 0u; width >>= 1) {
    if (lane < width) partial[lane] += partial[lane + width];
    barrier();
  }
  if (lane == 0u) y[group] = act_t(partial[0] / float(p.plane));
}
