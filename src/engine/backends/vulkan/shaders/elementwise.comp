// Elementwise layers, fp32, plain NCHW (vulkan_kernels.h's ElementwisePush):
// BinaryOp (same shape, a per-channel vector either side, a scalar), one step
// of Eltwise (sum with coefficients, product, max), PReLU.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "storage.glsl"
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer A { act_t a[]; };
layout(std430, binding = 1) readonly buffer B { act_t b[]; };
layout(std430, binding = 2) writeonly buffer Output { act_t y[]; };
layout(std430, binding = 3) readonly buffer Slopes { float slopes[]; };

layout(push_constant) uniform Push {
  uint total;   // values written
  int op;       // 0 add, 1 sub, 2 mul, 3 div (BinaryOp); 4 PReLU; 5 sum; 6 product; 7 max (Eltwise)
  int operand;  // 0 b of the same shape, 1 b a vector per channel of a, 2 the scalar, 3 a a vector per channel of b
  uint plane;   // values per channel of the map
  uint channels;  // PReLU: slopes per item (1: one shared slope)
  float coeff_a, coeff_b;  // sum
  float scalar;
} p;

void main() {
  const uint i = gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * 64u) + gl_GlobalInvocationID.x;
  if (i >= p.total) return;
  if (p.op == 4) {
    const float v = float(a[i]);
    const float slope = p.channels == 1u ? slopes[0] : slopes[(i / p.plane) % p.channels];
    y[i] = act_t(v < 0.0 ? v * slope : v);
    return;
  }
  float lhs, rhs;
  if (p.operand == 3) {
    lhs = float(a[i / p.plane]);
    rhs = float(b[i]);
  } else {
    lhs = float(a[i]);
    rhs = p.operand == 0 ? float(b[i]) : (p.operand == 1 ? float(b[i / p.plane]) : p.scalar);
  }
  float v;
  switch (p.op) {
    case 0: v = lhs + rhs; break;
    case 1: v = lhs - rhs; break;
    case 2: v = lhs * rhs; break;
    case 3: v = lhs / rhs; break;
    case 5: v = p.coeff_a * lhs + p.coeff_b * rhs; break;
    case 6: v = lhs * rhs; break;
    default: v = max(lhs, rhs); break;
  }
  y[i] = act_t(v);
}
