// The CUDA backend's own kernels: everything but the convolutions cuDNN runs,
// plus direct convolution and deconvolution kernels used where cuDNN is not
// installed. Activations are NHWC (channels last; a 1-D vector of length L is
// n x 1 x 1 x L) in fp32 or fp16; arithmetic is fp32 (double where the
// reference kernels sum many terms: pooling, inner products). Every function
// only enqueues work on `stream`; errors of a launch show in LastLaunchStatus.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "engine/data_type.h"

// Shape4::count on both sides.
#ifdef __CUDACC__
#define TESSERA_HOST_DEVICE __host__ __device__
#else
#define TESSERA_HOST_DEVICE
#endif

namespace tessera::engine::cuda::kernels {

struct Shape4 {
  int n = 1, h = 1, w = 1, c = 1;
  TESSERA_HOST_DEVICE size_t count() const { return static_cast<size_t>(n) * h * w * c; }
};

// Host order (n x c x h x w, fp32) to NHWC in `dtype`, and back.
void PlanarToNhwc(const float* src, void* dst, DataType dtype, Shape4 shape, cudaStream_t stream);
void NhwcToPlanar(const void* src, DataType dtype, float* dst, Shape4 shape, cudaStream_t stream);

// Tiles cut and placed on the device (engine/device_tiling.h). Images are
// planar fp32 (c x h x w); a batch is NHWC in `dtype`, converted as
// PlanarToNhwc and NhwcToPlanar convert, so the bytes match the host path's.
inline constexpr int kMaxTileBatch = 64;
struct TileOrigins {
  int x[kMaxTileBatch] = {};
  int y[kMaxTileBatch] = {};
  int count = 0;
};
// out[k] (out.h x out.w x out.c) = image at origin k, its rows and columns
// outside the image mirrored without repeating the edge (`reflect`) or clamped.
void GatherTiles(const float* image, int image_h, int image_w, const TileOrigins& origins, bool reflect, void* out,
                 Shape4 out_shape, DataType dtype, cudaStream_t stream);
struct TileRects {
  int src_x[kMaxTileBatch] = {}, src_y[kMaxTileBatch] = {};
  int dst_x[kMaxTileBatch] = {}, dst_y[kMaxTileBatch] = {};
  int w[kMaxTileBatch] = {}, h[kMaxTileBatch] = {};
  int count = 0;
};
// image[:, dst_y + y, dst_x + x] = batch[k, src_y + y, src_x + x, :] for each rect k.
void PlaceTiles(const void* batch, Shape4 batch_shape, DataType dtype, const TileRects& rects, float* image,
                int image_h, int image_w, cudaStream_t stream);

// out[c, y, x] += in[c, y / scale, x / scale], both planar fp32.
void AddNearest(const float* in, int c, int in_h, int in_w, int scale, float* out, cudaStream_t stream);

// What a convolution's output goes through before it is stored: bias, the
// layer's activation, then the layers fused into it, in order.
struct PostOp {
  enum Kind : int { kActivation, kPrelu, kSum };
  Kind kind = kActivation;
  int activation = 0;  // ncnn's numbering: 1 ReLU, 2 leaky ReLU (a), 3 clip (a, b), 4 sigmoid
  float a = 0.f, b = 0.f;
  const float* slopes = nullptr;  // kPrelu: per channel, or one shared (slope_count 1)
  int slope_count = 0;
  const void* other = nullptr;  // kSum: self_coeff * value + other_coeff * other
  bool other_is_vector = false;  // other is n x C, broadcast over the plane
  float self_coeff = 1.f, other_coeff = 1.f;
};
inline constexpr int kMaxPostOps = 4;
struct Epilogue {
  const float* bias = nullptr;  // per output channel, or null
  PostOp ops[kMaxPostOps];
  int count = 0;
};
// out[n, y, x, c] = epilogue(src[n, y + offset_y, x + offset_x, c]), where src
// is n x src_h x src_w x out.c. In place when src == out with no offset.
void ApplyEpilogue(const void* src, int src_h, int src_w, int offset_y, int offset_x, void* out, Shape4 out_shape,
                   DataType dtype, const Epilogue& epilogue, cudaStream_t stream);

struct ConvGeometry {
  int kw = 1, kh = 1, dw = 1, dh = 1, sw = 1, sh = 1;
  int pad_left = 0, pad_top = 0;  // deconvolution: the crop of the full output
};
// Without bias or activation (the epilogue adds them). Convolution weights are
// [out][ky][kx][in], deconvolution weights ncnn's [out][in][ky][kx], fp32.
void DirectConvolution(const void* in, Shape4 in_shape, const float* weights, void* out, Shape4 out_shape,
                       const ConvGeometry& g, DataType dtype, cudaStream_t stream);
void DirectDeconvolution(const void* in, Shape4 in_shape, const float* weights, void* out, Shape4 out_shape,
                         const ConvGeometry& g, DataType dtype, cudaStream_t stream);

inline constexpr int kMaxEltwiseInputs = 8;
struct EltwiseInputs {
  const void* data[kMaxEltwiseInputs] = {};
  float coeff[kMaxEltwiseInputs] = {};
  int count = 0;
};
// ncnn Eltwise: 0 product, 1 weighted sum, 2 max, over inputs of one shape.
void Eltwise(const EltwiseInputs& inputs, int op, void* out, size_t count, DataType dtype, cudaStream_t stream);

// ncnn BinaryOp (0 add, 1 sub, 2 mul, 3 div): same shapes, a map and a
// per-channel vector either way round (`vector_first`: a is the vector), or
// with a scalar (b null).
enum class Broadcast { kNone, kVectorSecond, kVectorFirst, kScalar };
void BinaryOp(const void* a, const void* b, float scalar, Broadcast broadcast, int op, void* out, Shape4 map_shape,
              DataType dtype, cudaStream_t stream);

// x * scale[c] (+ bias[c]): scale from a device vector in `dtype` (another
// blob) or fp32 weights.
void Scale(const void* x, Shape4 shape, const void* scale_blob, const float* scale_weights, const float* bias, void* out,
           DataType dtype, cudaStream_t stream);

// Copies `src` into channels [channel_offset, channel_offset + src.c) of `dst`,
// which has dst_channels channels and src's n, h, w.
void CopyChannels(const void* src, Shape4 src_shape, void* dst, int dst_channels, int channel_offset, DataType dtype,
                  cudaStream_t stream);
// out = src[:, y0 : y0 + out.h, x0 : x0 + out.w, c0 : c0 + out.c].
void Crop(const void* src, Shape4 src_shape, int c0, int y0, int x0, void* out, Shape4 out_shape, DataType dtype,
          cudaStream_t stream);
// Nearest: source index = min(int(d * inverse), size - 1) per axis, as ncnn.
void InterpNearest(const void* src, Shape4 src_shape, float inverse_y, float inverse_x, void* out, Shape4 out_shape,
                   DataType dtype, cudaStream_t stream);
// Bilinear with half-pixel centres, edge-clamped, as the reference kernel.
void InterpBilinear(const void* src, Shape4 src_shape, void* out, Shape4 out_shape, DataType dtype, cudaStream_t stream);
void PixelShuffle(const void* src, Shape4 src_shape, int r, void* out, DataType dtype, cudaStream_t stream);
// out (n x c vector) = mean over each channel's plane.
void GlobalAveragePool(const void* src, Shape4 src_shape, void* out, DataType dtype, cudaStream_t stream);
// out[n][o] = activation(bias[o] + sum_k weights[o][k] * in[n][k]).
void InnerProduct(const void* in, int n, int inputs, const float* weights, const float* bias, int outputs,
                  int activation, float a, float b, void* out, DataType dtype, cudaStream_t stream);

}  // namespace tessera::engine::cuda::kernels
