// One tile's padded input cut from an image on the device (DeviceTiling::
// GatherTiles; vulkan_kernels.h's GatherTilePush): batch item `item` of c x h x w
// takes the image's pixels from (x0, y0) on; positions outside the image take
// the mirrored pixel (reflect, the edge not repeated) or the edge pixel
// (replicate), as the host path's ReflectIndex and ReplicateIndex do
// (engine/model_upscaler.cpp). A copy: the values are the image's bits.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "storage.glsl"
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Image { act_t image[]; };
layout(std430, binding = 1) writeonly buffer Batch { act_t batch[]; };

layout(push_constant) uniform Push {
  uint total;  // c * h * w: one tile
  int c, image_h, image_w, h, w;
  int x0, y0;  // the tile's top-left corner in image coordinates (may be negative)
  int item;    // batch item written
  int reflect;
} p;

int EdgeIndex(int i, int n) {
  if (p.reflect == 0) return clamp(i, 0, n - 1);
  if (n == 1) return 0;
  const int period = 2 * (n - 1);
  i %= period;  // GLSL's % of a negative int is undefined: fold the sign by hand
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

void main() {
  const uint i = gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * 64u) + gl_GlobalInvocationID.x;
  if (i >= p.total) return;
  const int x = int(i % uint(p.w));
  const uint t = i / uint(p.w);
  const int y = int(t % uint(p.h));
  const int q = int(t / uint(p.h));
  const int iy = EdgeIndex(p.y0 + y, p.image_h);
  const int ix = EdgeIndex(p.x0 + x, p.image_w);
  batch[uint(p.item) * p.total + i] = image[(q * p.image_h + iy) * p.image_w + ix];
}
