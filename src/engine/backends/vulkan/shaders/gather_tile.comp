// One tile's padded input cut from an image on the device (DeviceTiling::
// GatherTiles; vulkan_kernels.h's GatherTilePush): batch item `item` of c x h x w
// takes the image's pixels from (x0, y0) on; positions outside the image take
// the mirrored pixel (reflect, the edge not repeated) or the edge pixel
// (replicate), as the host path's ReflectIndex and ReplicateIndex do
// (engine/model_upscaler.cpp). The image is fp32; the batch holds activations:
// in fp32 a copy of the image's bits, in fp16 (the _fp16 variant) each value
// rounded to nearest even by hand (HalfBits), as FromHost rounds on the host —
// a shader's own fp32-to-fp16 conversion rounds as the driver pleases, and the
// tiles must be the host path's bits.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "storage.glsl"
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Image { float image[]; };
#ifdef TESSERA_FP16
layout(std430, binding = 1) writeonly buffer Batch { uint16_t batch[]; };  // fp16 bits
#else
layout(std430, binding = 1) writeonly buffer Batch { float batch[]; };
#endif

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

#ifdef TESSERA_FP16
// The fp16 bits of v, rounded to nearest even (IEEE 754 binary16: 1 sign bit,
// 5 exponent bits biased by 15, 10 mantissa bits).
uint HalfBits(float v) {
  const uint f = floatBitsToUint(v);
  const uint sign = (f >> 16) & 0x8000u;
  const uint a = f & 0x7fffffffu;
  if (a > 0x7f800000u) return sign | 0x7e00u;  // NaN
  if (a >= 0x477ff000u) return sign | 0x7c00u;  // 65520 and up (infinity too): infinity
  if (a < 0x38800000u) {
    // Below 2^-14: a subnormal, a multiple of 2^-24. The scaling is exact and
    // roundEven rounds half to even; 1024 is the smallest normal's bits.
    return sign | uint(roundEven(uintBitsToFloat(a) * 16777216.0));
  }
  // Normal: rebias the exponent (127 -> 15) and round the 13 dropped bits; a
  // carry out of the mantissa increments the exponent, as it should.
  uint h = (a >> 13) - (112u << 10);
  const uint dropped = a & 0x1fffu;
  if (dropped > 0x1000u || (dropped == 0x1000u && (h & 1u) != 0u)) h += 1u;
  return sign | h;
}
#endif

void main() {
  const uint i = gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * 64u) + gl_GlobalInvocationID.x;
  if (i >= p.total) return;
  const int x = int(i % uint(p.w));
  const uint t = i / uint(p.w);
  const int y = int(t % uint(p.h));
  const int q = int(t / uint(p.h));
  const int iy = EdgeIndex(p.y0 + y, p.image_h);
  const int ix = EdgeIndex(p.x0 + x, p.image_w);
  const float v = image[(q * p.image_h + iy) * p.image_w + ix];
#ifdef TESSERA_FP16
  batch[uint(p.item) * p.total + i] = uint16_t(HalfBits(v));
#else
  batch[uint(p.item) * p.total + i] = v;
#endif
}
