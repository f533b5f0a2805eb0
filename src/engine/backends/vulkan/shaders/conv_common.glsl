// Shared by conv2d.comp and deconv2d.comp: bindings, push constants (the
// layout of vulkan_kernels.h's ConvPush, field for field) and the epilogue:
// bias, the layer's own activation, then the layers fused into it in order.
#include "storage.glsl"

layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Input { act_t x[]; };
layout(std430, binding = 1) readonly buffer Weights { float wt[]; };  // ncnn's order: [out][in][kh][kw]
layout(std430, binding = 2) readonly buffer Bias { float bias[]; };
layout(std430, binding = 3) writeonly buffer Output { act_t y[]; };
layout(std430, binding = 4) readonly buffer Slopes { float slopes[]; };  // a fused PReLU's
layout(std430, binding = 5) readonly buffer Other { act_t other[]; };    // a fused residual sum's other input

layout(push_constant) uniform Push {
  uint total;  // invocations: n * out_c * out_h * out_w for deconv2d, a quarter of the channels for conv2d
  int n, in_c, in_h, in_w;
  int out_c, out_h, out_w;
  int kw, kh, dw, dh, sw, sh;
  int pad_left, pad_top;  // convolution: input padding; deconvolution: the crop of the full output
  int has_bias;
  int activation;  // ncnn's: 0 none, 1 ReLU, 2 leaky ReLU (a), 3 clip (a, b), 4 sigmoid
  float act_a, act_b;
  int post0, post1;  // fused layers after the activation: 0 none, 1 PReLU, 2 residual sum
  int slope_count;   // PReLU: 1 (shared) or out_c
  int other_vector;  // residual: 0 a map of the output's shape, 1 a vector per channel
  float self_coeff, other_coeff;
} p;

// The flat index of this invocation (a 2-D grid of 64-wide groups, so that
// large outputs stay within the dispatch limits).
uint FlatIndex() { return gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * 64u) + gl_GlobalInvocationID.x; }

float PostOp(int kind, float v, uint i, int b, int oc) {
  if (kind == 1) {
    const float slope = p.slope_count == 1 ? slopes[0] : slopes[oc];
    return v < 0.0 ? v * slope : v;
  }
  if (kind == 2) {
    const float o = float(p.other_vector != 0 ? other[b * p.out_c + oc] : other[i]);
    return p.self_coeff * v + p.other_coeff * o;
  }
  return v;
}

void Finish(float v, uint i, int b, int oc) {
  if (p.activation == 1) {
    v = max(v, 0.0);
  } else if (p.activation == 2) {
    v = v > 0.0 ? v : v * p.act_a;
  } else if (p.activation == 3) {
    v = min(max(v, p.act_a), p.act_b);
  } else if (p.activation == 4) {
    v = 1.0 / (1.0 + exp(-v));
  }
  v = PostOp(p.post0, v, i, b, oc);
  v = PostOp(p.post1, v, i, b, oc);
  y[i] = act_t(v);
}
