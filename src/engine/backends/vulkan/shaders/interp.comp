// Interp, fp32, plain NCHW (vulkan_kernels.h's InterpPush), as the reference
// kernel computes it (ops/reference_shape.cpp): nearest with ncnn's truncated
// `d * inverse_scale`; bilinear with half-pixel centres clamped at the edges.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "storage.glsl"
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Source { act_t src[]; };
layout(std430, binding = 1) writeonly buffer Destination { act_t dst[]; };

layout(push_constant) uniform Push {
  uint total;  // n * c * out_h * out_w
  int c, in_h, in_w, out_h, out_w;
  int bilinear;            // 0 nearest, 1 bilinear
  float inv_y, inv_x;      // nearest: source index = int(d * inv), clamped
  float ratio_y, ratio_x;  // bilinear: in / out
} p;

void main() {
  const uint i = gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * 64u) + gl_GlobalInvocationID.x;
  if (i >= p.total) return;
  const int ox = int(i % uint(p.out_w));
  uint t = i / uint(p.out_w);
  const int oy = int(t % uint(p.out_h));
  const int plane_index = int(t / uint(p.out_h));  // b * c + channel
  const int base = plane_index * p.in_h * p.in_w;
  if (p.bilinear == 0) {
    const int sy = min(int(float(oy) * p.inv_y), p.in_h - 1);
    const int sx = min(int(float(ox) * p.inv_x), p.in_w - 1);
    dst[i] = src[base + sy * p.in_w + sx];
    return;
  }
  float fy = (float(oy) + 0.5) * p.ratio_y - 0.5;
  int y0 = int(floor(fy));
  fy -= float(y0);
  if (y0 < 0) { y0 = 0; fy = 0.0; }
  if (y0 >= p.in_h - 1) { y0 = max(p.in_h - 2, 0); fy = p.in_h > 1 ? 1.0 : 0.0; }
  float fx = (float(ox) + 0.5) * p.ratio_x - 0.5;
  int x0 = int(floor(fx));
  fx -= float(x0);
  if (x0 < 0) { x0 = 0; fx = 0.0; }
  if (x0 >= p.in_w - 1) { x0 = max(p.in_w - 2, 0); fx = p.in_w > 1 ? 1.0 : 0.0; }
  const int x1 = min(x0 + 1, p.in_w - 1);
  const int y1 = min(y0 + 1, p.in_h - 1);
  const float top = float(src[base + y0 * p.in_w + x0]) * (1.0 - fx) + float(src[base + y0 * p.in_w + x1]) * fx;
  const float bottom = float(src[base + y1 * p.in_w + x0]) * (1.0 - fx) + float(src[base + y1 * p.in_w + x1]) * fx;
  dst[i] = act_t(top * (1.0 - fy) + bottom * fy);
}
