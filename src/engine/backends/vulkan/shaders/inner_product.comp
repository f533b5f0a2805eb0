// InnerProduct (vulkan_kernels.h's InnerProductPush): each item's values
// (a vector, or a map read flat) times the [num_output][inputs] weights, plus
// bias, then the layer's activation as ncnn numbers it. One invocation per
// output value.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "storage.glsl"
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Input { act_t x[]; };
layout(std430, binding = 1) readonly buffer Weights { float wt[]; };
layout(std430, binding = 2) readonly buffer Bias { float bias[]; };
layout(std430, binding = 3) writeonly buffer Output { act_t y[]; };

layout(push_constant) uniform Push {
  uint total;  // n * num_output
  uint inputs;  // values per item
  uint num_output;
  int has_bias;
  int activation;  // 0 none, 1 ReLU, 2 leaky ReLU (a), 3 clip (a, b), 4 sigmoid
  float act_a, act_b;
} p;

void main() {
  const uint i = gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * 64u) + gl_GlobalInvocationID.x;
  if (i >= p.total) return;
  const uint o = i % p.num_output;
  const uint item = i / p.num_output;
  const uint in_base = item * p.inputs;
  const uint w_base = o * p.inputs;
  float sum = p.has_bias != 0 ? bias[o] : 0.0;
  for (uint k = 0u; k < p.inputs; ++k) sum += wt[w_base + k] * float(x[in_base + k]);
  if (p.activation == 1) {
    sum = max(sum, 0.0);
  } else if (p.activation == 2) {
    sum = sum > 0.0 ? sum : sum * p.act_a;
  } else if (p.activation == 3) {
    sum = min(max(sum, p.act_a), p.act_b);
  } else if (p.activation == 4) {
    sum = 1.0 / (1.0 + exp(-sum));
  }
  y[i] = act_t(sum);
}
