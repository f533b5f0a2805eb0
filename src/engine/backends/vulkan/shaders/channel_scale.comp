// Scale, plain NCHW (vulkan_kernels.h's ChannelScalePush): every value of
// channel q times its scale (the layer's own, or a second blob's), plus bias[q]
// when the layer has one, computed as the reference kernel writes it
// (ops/reference_elementwise.cpp).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "storage.glsl"
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Input { act_t x[]; };
layout(std430, binding = 1) readonly buffer Scales { act_t scale[]; };  // a blob's: activations
layout(std430, binding = 2) readonly buffer Bias { float bias[]; };
layout(std430, binding = 3) writeonly buffer Output { act_t y[]; };
layout(std430, binding = 4) readonly buffer OwnScales { float own[]; };  // the layer's: fp32 weights

layout(push_constant) uniform Push {
  uint total;     // values written
  uint plane;     // values per channel (1 for a vector)
  uint channels;  // scales before they repeat: c for the layer's own, n * c for a blob's
  int has_bias;
  int own_scales;  // 1: the layer's scales (binding 4, fp32), 0: a blob's (binding 1, activations)
} p;

void main() {
  const uint i = gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * 64u) + gl_GlobalInvocationID.x;
  if (i >= p.total) return;
  const uint q = (i / p.plane) % p.channels;
  const float s = p.own_scales != 0 ? own[q] : float(scale[q]);
  const float v = float(x[i]) * s;
  y[i] = act_t(p.has_bias != 0 ? v + bias[q] : v);
}
