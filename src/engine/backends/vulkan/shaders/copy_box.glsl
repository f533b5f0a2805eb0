// A box of channels x rows x columns copied from one NCHW tensor into another,
// each at its own offsets (vulkan_kernels.h's CopyBoxPush). The source holds
// activations (act_t); the destination's type is COPY_DST_T and COPY_STORE
// turns a source value into it, both defined by the including shader: act_t
// as it is for copy_box.comp, fp32 for place_tile.comp.
// Widening fp16 to fp32 is exact, so either way a value is copied, not changed.
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Source { act_t src[]; };
layout(std430, binding = 1) writeonly buffer Destination { COPY_DST_T dst[]; };

layout(push_constant) uniform Push {
  uint total;  // n * box_c * box_h * box_w
  int box_c, box_h, box_w;
  int src_c, src_h, src_w, src_c0, src_y0, src_x0;
  int dst_c, dst_h, dst_w, dst_c0, dst_y0, dst_x0;
} p;

void main() {
  const uint i = gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * 64u) + gl_GlobalInvocationID.x;
  if (i >= p.total) return;
  const int x = int(i % uint(p.box_w));
  uint t = i / uint(p.box_w);
  const int y = int(t % uint(p.box_h));
  t /= uint(p.box_h);
  const int c = int(t % uint(p.box_c));
  const int b = int(t / uint(p.box_c));
  const int s = ((b * p.src_c + c + p.src_c0) * p.src_h + y + p.src_y0) * p.src_w + x + p.src_x0;
  const int d = ((b * p.dst_c + c + p.dst_c0) * p.dst_h + y + p.dst_y0) * p.dst_w + x + p.dst_x0;
  dst[d] = COPY_STORE(src[s]);
}
