// Scale, fp32, plain NCHW (vulkan_kernels.h's ChannelScalePush): every value
// of channel q times scale[q], plus bias[q] when the layer has one, computed
// as the reference kernel writes it (ops/reference_elementwise.cpp).
#version 450
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Input { float x[]; };
layout(std430, binding = 1) readonly buffer Scales { float scale[]; };
layout(std430, binding = 2) readonly buffer Bias { float bias[]; };
layout(std430, binding = 3) writeonly buffer Output { float y[]; };

layout(push_constant) uniform Push {
  uint total;     // values written
  uint plane;     // values per channel (1 for a vector)
  uint channels;  // scales before they repeat: c for the layer's own, n * c for a blob's
  int has_bias;
} p;

void main() {
  const uint i = gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * 64u) + gl_GlobalInvocationID.x;
  if (i >= p.total) return;
  const uint q = (i / p.plane) % p.channels;
  const float v = x[i] * scale[q];
  y[i] = p.has_bias != 0 ? v + bias[q] : v;
}
