// The backend's own kernels (cuda_kernels.h). Simple grid-stride loops: these
// layers move memory once and are a small part of a model's time next to the
// convolutions; the direct convolutions are the correct, slow path for
// machines without cuDNN.
#include <cuda_fp16.h>

#include <cmath>

#include "engine/backends/cuda/cuda_kernels.h"

namespace tessera::engine::cuda::kernels {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float Load(const float* p, size_t i) { return p[i]; }
__device__ __forceinline__ float Load(const __half* p, size_t i) { return __half2float(p[i]); }
__device__ __forceinline__ void Store(float* p, size_t i, float v) { p[i] = v; }
__device__ __forceinline__ void Store(__half* p, size_t i, float v) { p[i] = __float2half_rn(v); }

// Where flat index i of an NHWC tensor of shape s sits.
struct NhwcIndex {
  size_t n;
  int y, x, c;
};
__device__ __forceinline__ NhwcIndex Decompose(size_t i, const Shape4& s) {
  NhwcIndex at;
  at.c = static_cast<int>(i % s.c);
  size_t rest = i / s.c;
  at.x = static_cast<int>(rest % s.w);
  rest /= s.w;
  at.y = static_cast<int>(rest % s.h);
  at.n = rest / s.h;
  return at;
}

int Blocks(size_t count) {
  const size_t blocks = (count + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 65535 ? (blocks == 0 ? 1 : blocks) : 65535);
}

#define GRID_STRIDE(i, count) \
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < (count); i += static_cast<size_t>(blockDim.x) * gridDim.x)

// Runs `launch` with T = float or __half.
template <typename Launch>
void ForType(DataType dtype, Launch&& launch) {
  if (dtype == DataType::kF16) {
    launch(static_cast<__half*>(nullptr));
  } else {
    launch(static_cast<float*>(nullptr));
  }
}

__device__ __forceinline__ float Activate(int type, float a, float b, float v) {
  switch (type) {
    case 1: return v > 0.f ? v : 0.f;
    case 2: return v > 0.f ? v : v * a;
    case 3: return fminf(fmaxf(v, a), b);
    case 4: return static_cast<float>(1.0 / (1.0 + exp(-static_cast<double>(v))));
    default: return v;
  }
}

template <typename T>
__global__ void PlanarToNhwcKernel(const float* src, T* dst, Shape4 s) {
  GRID_STRIDE(i, s.count()) {
    const NhwcIndex p = Decompose(i, s);
    const size_t n = p.n;
    const int y = p.y, x = p.x, c = p.c;
    Store(dst, i, src[((n * s.c + c) * s.h + y) * s.w + x]);
  }
}

template <typename T>
__global__ void NhwcToPlanarKernel(const T* src, float* dst, Shape4 s) {
  GRID_STRIDE(i, s.count()) {  // i walks the planar output
    const int x = static_cast<int>(i % s.w);
    size_t rest = i / s.w;
    const int y = static_cast<int>(rest % s.h);
    rest /= s.h;
    const int c = static_cast<int>(rest % s.c);
    const size_t n = rest / s.c;
    dst[i] = Load(src, ((n * s.h + y) * s.w + x) * s.c + c);
  }
}

__device__ __forceinline__ int EdgeIndex(int i, int n, bool reflect) {
  if (!reflect) return min(max(i, 0), n - 1);
  if (n == 1) return 0;
  const int period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

// blockIdx.y: the batch item.
template <typename T>
__global__ void GatherTilesKernel(const float* image, int image_h, int image_w, TileOrigins origins, bool reflect,
                                  T* out, Shape4 s) {
  const int k = blockIdx.y;
  const size_t item = static_cast<size_t>(s.h) * s.w * s.c;
  GRID_STRIDE(i, item) {
    const int c = static_cast<int>(i % s.c);
    const size_t rest = i / s.c;
    const int x = static_cast<int>(rest % s.w);
    const int y = static_cast<int>(rest / s.w);
    const int iy = EdgeIndex(origins.y[k] + y, image_h, reflect);
    const int ix = EdgeIndex(origins.x[k] + x, image_w, reflect);
    Store(out, k * item + i, image[(static_cast<size_t>(c) * image_h + iy) * image_w + ix]);
  }
}

template <typename T>
__global__ void PlaceTilesKernel(const T* batch, Shape4 s, TileRects rects, float* image, int image_h, int image_w) {
  const int k = blockIdx.y;
  const int w = rects.w[k], h = rects.h[k];
  GRID_STRIDE(i, static_cast<size_t>(s.c) * h * w) {  // planar order: the image's writes coalesce
    const int x = static_cast<int>(i % w);
    const size_t rest = i / w;
    const int y = static_cast<int>(rest % h);
    const int c = static_cast<int>(rest / h);
    const float v = Load(batch, ((static_cast<size_t>(k) * s.h + rects.src_y[k] + y) * s.w + rects.src_x[k] + x) * s.c + c);
    image[(static_cast<size_t>(c) * image_h + rects.dst_y[k] + y) * image_w + rects.dst_x[k] + x] = v;
  }
}

__global__ void AddNearestKernel(const float* in, int c, int in_h, int in_w, int scale, float* out) {
  const int out_h = in_h * scale, out_w = in_w * scale;
  GRID_STRIDE(i, static_cast<size_t>(c) * out_h * out_w) {
    const int x = static_cast<int>(i % out_w);
    const size_t rest = i / out_w;
    const int y = static_cast<int>(rest % out_h);
    const int q = static_cast<int>(rest / out_h);
    // __fadd_rn: one rounded addition, never contracted into something else.
    out[i] = __fadd_rn(out[i], in[(static_cast<size_t>(q) * in_h + y / scale) * in_w + x / scale]);
  }
}

template <typename T>
__global__ void EpilogueKernel(const T* src, int src_h, int src_w, int oy, int ox, T* out, Shape4 s, Epilogue e) {
  GRID_STRIDE(i, s.count()) {
    const NhwcIndex p = Decompose(i, s);
    const size_t n = p.n;
    const int y = p.y, x = p.x, c = p.c;
    float v = Load(src, ((n * src_h + y + oy) * src_w + x + ox) * s.c + c);
    if (e.bias != nullptr) v += e.bias[c];
    for (int k = 0; k < e.count; ++k) {
      const PostOp& op = e.ops[k];
      if (op.kind == PostOp::kActivation) {
        v = Activate(op.activation, op.a, op.b, v);
      } else if (op.kind == PostOp::kPrelu) {
        const float slope = op.slope_count == 1 ? op.slopes[0] : op.slopes[c];
        v = v < 0.f ? v * slope : v;
      } else {
        const T* other = static_cast<const T*>(op.other);
        const float o = op.other_is_vector ? Load(other, n * s.c + c) : Load(other, i);
        v = op.self_coeff * v + op.other_coeff * o;
      }
    }
    Store(out, i, v);
  }
}

template <typename T>
__global__ void DirectConvolutionKernel(const T* in, Shape4 is, const float* weights, T* out, Shape4 os,
                                        ConvGeometry g) {
  GRID_STRIDE(i, os.count()) {
    const NhwcIndex p = Decompose(i, os);
    const size_t n = p.n;
    const int y = p.y, x = p.x, oc = p.c;
    float acc = 0.f;
    for (int ky = 0; ky < g.kh; ++ky) {
      const int iy = y * g.sh + ky * g.dh - g.pad_top;
      if (iy < 0 || iy >= is.h) continue;
      for (int kx = 0; kx < g.kw; ++kx) {
        const int ix = x * g.sw + kx * g.dw - g.pad_left;
        if (ix < 0 || ix >= is.w) continue;
        const size_t src = ((n * is.h + iy) * is.w + ix) * is.c;
        const float* w = weights + ((static_cast<size_t>(oc) * g.kh + ky) * g.kw + kx) * is.c;
        for (int ic = 0; ic < is.c; ++ic) acc += Load(in, src + ic) * w[ic];
      }
    }
    Store(out, i, acc);
  }
}

template <typename T>
__global__ void DirectDeconvolutionKernel(const T* in, Shape4 is, const float* weights, T* out, Shape4 os,
                                          ConvGeometry g) {
  GRID_STRIDE(i, os.count()) {
    const NhwcIndex p = Decompose(i, os);
    const size_t n = p.n;
    const int y = p.y, x = p.x, oc = p.c;
    const int fy = y + g.pad_top, fx = x + g.pad_left;  // position in the uncropped output
    float acc = 0.f;
    for (int ky = 0; ky < g.kh; ++ky) {
      const int ty = fy - ky * g.dh;
      if (ty < 0 || ty % g.sh != 0 || ty / g.sh >= is.h) continue;
      for (int kx = 0; kx < g.kw; ++kx) {
        const int tx = fx - kx * g.dw;
        if (tx < 0 || tx % g.sw != 0 || tx / g.sw >= is.w) continue;
        const size_t src = ((n * is.h + ty / g.sh) * is.w + tx / g.sw) * is.c;
        for (int ic = 0; ic < is.c; ++ic) {
          acc += Load(in, src + ic) * weights[((static_cast<size_t>(oc) * is.c + ic) * g.kh + ky) * g.kw + kx];
        }
      }
    }
    Store(out, i, acc);
  }
}

template <typename T>
__global__ void EltwiseKernel(EltwiseInputs in, int op, T* out, size_t count) {
  GRID_STRIDE(i, count) {
    if (op == 1) {
      double acc = 0.0;
      for (int k = 0; k < in.count; ++k) acc += static_cast<double>(in.coeff[k]) * Load(static_cast<const T*>(in.data[k]), i);
      Store(out, i, static_cast<float>(acc));
    } else {
      float v = Load(static_cast<const T*>(in.data[0]), i);
      for (int k = 1; k < in.count; ++k) {
        const float o = Load(static_cast<const T*>(in.data[k]), i);
        v = op == 0 ? v * o : fmaxf(v, o);
      }
      Store(out, i, v);
    }
  }
}

__device__ __forceinline__ float Binary(int op, float a, float b) {
  switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    default: return a;
  }
}

template <typename T>
__global__ void BinaryOpKernel(const T* a, const T* b, float scalar, Broadcast broadcast, int op, T* out, Shape4 s) {
  GRID_STRIDE(i, s.count()) {
    const int c = static_cast<int>(i % s.c);
    const size_t n = i / (static_cast<size_t>(s.c) * s.h * s.w);
    float x, y;
    switch (broadcast) {
      case Broadcast::kNone: x = Load(a, i), y = Load(b, i); break;
      case Broadcast::kVectorSecond: x = Load(a, i), y = Load(b, n * s.c + c); break;
      case Broadcast::kVectorFirst: x = Load(a, n * s.c + c), y = Load(b, i); break;
      default: x = Load(a, i), y = scalar; break;
    }
    Store(out, i, Binary(op, x, y));
  }
}

template <typename T>
__global__ void ScaleKernel(const T* x, Shape4 s, const T* scale_blob, const float* scale_weights, const float* bias,
                            T* out) {
  GRID_STRIDE(i, s.count()) {
    const int c = static_cast<int>(i % s.c);
    const size_t n = i / (static_cast<size_t>(s.c) * s.h * s.w);
    const float scale = scale_blob != nullptr ? Load(scale_blob, n * s.c + c) : scale_weights[c];
    Store(out, i, Load(x, i) * scale + (bias != nullptr ? bias[c] : 0.f));
  }
}

template <typename T>
__global__ void CopyChannelsKernel(const T* src, Shape4 s, T* dst, int dst_c, int offset) {
  GRID_STRIDE(i, s.count()) {
    const int c = static_cast<int>(i % s.c);
    const size_t pixel = i / s.c;
    dst[pixel * dst_c + offset + c] = src[i];
  }
}

template <typename T>
__global__ void CropKernel(const T* src, Shape4 ss, int c0, int y0, int x0, T* out, Shape4 os) {
  GRID_STRIDE(i, os.count()) {
    const NhwcIndex p = Decompose(i, os);
    const size_t n = p.n;
    const int y = p.y, x = p.x, c = p.c;
    out[i] = src[((n * ss.h + y + y0) * ss.w + x + x0) * ss.c + c + c0];
  }
}

template <typename T>
__global__ void InterpNearestKernel(const T* src, Shape4 ss, float inv_y, float inv_x, T* out, Shape4 os) {
  GRID_STRIDE(i, os.count()) {
    const NhwcIndex p = Decompose(i, os);
    const size_t n = p.n;
    const int y = p.y, x = p.x, c = p.c;
    const int sy = min(static_cast<int>(__fmul_rn(static_cast<float>(y), inv_y)), ss.h - 1);
    const int sx = min(static_cast<int>(__fmul_rn(static_cast<float>(x), inv_x)), ss.w - 1);
    out[i] = src[((n * ss.h + sy) * ss.w + sx) * ss.c + c];
  }
}

// One axis of the reference bilinear kernel: the first tap and its weight.
__device__ __forceinline__ void BilinearTap(int d, double scale, int size, int* first, float* frac) {
  float f = static_cast<float>((d + 0.5) * scale - 0.5);
  int s = static_cast<int>(floorf(f));
  f -= static_cast<float>(s);
  if (s < 0) s = 0, f = 0.f;
  if (s >= size - 1) s = max(size - 2, 0), f = size > 1 ? 1.f : 0.f;
  *first = s;
  *frac = f;
}

template <typename T>
__global__ void InterpBilinearKernel(const T* src, Shape4 ss, T* out, Shape4 os) {
  const double scale_y = static_cast<double>(ss.h) / os.h, scale_x = static_cast<double>(ss.w) / os.w;
  GRID_STRIDE(i, os.count()) {
    const NhwcIndex p = Decompose(i, os);
    const size_t n = p.n;
    const int y = p.y, x = p.x, c = p.c;
    int y0, x0;
    float fy, fx;
    BilinearTap(y, scale_y, ss.h, &y0, &fy);
    BilinearTap(x, scale_x, ss.w, &x0, &fx);
    const int y1 = min(y0 + 1, ss.h - 1), x1 = min(x0 + 1, ss.w - 1);
    auto at = [&](int yy, int xx) { return static_cast<double>(Load(src, ((n * ss.h + yy) * ss.w + xx) * ss.c + c)); };
    const double top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * static_cast<double>(fx);
    const double bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * static_cast<double>(fx);
    Store(out, i, static_cast<float>(top * (1.0 - fy) + bottom * fy));
  }
}

template <typename T>
__global__ void PixelShuffleKernel(const T* src, Shape4 ss, int r, T* out) {
  const int oc_count = ss.c / (r * r), ow = ss.w * r, oh = ss.h * r;
  GRID_STRIDE(i, ss.count()) {  // i walks the output, which has as many values
    const int oc = static_cast<int>(i % oc_count);
    size_t rest = i / oc_count;
    const int x = static_cast<int>(rest % ow);
    rest /= ow;
    const int y = static_cast<int>(rest % oh);
    const size_t n = rest / oh;
    const int src_c = oc * r * r + (y % r) * r + (x % r);
    out[i] = src[((n * ss.h + y / r) * ss.w + x / r) * ss.c + src_c];
  }
}

template <typename T>
__global__ void GlobalAveragePoolKernel(const T* src, Shape4 s, T* out) {
  // One block per (n, c): threads sum strided pixels, then a tree in shared memory.
  __shared__ double partial[kThreads];
  const size_t n = blockIdx.x / s.c;
  const int c = static_cast<int>(blockIdx.x % s.c);
  const size_t plane = static_cast<size_t>(s.h) * s.w;
  double sum = 0.0;
  for (size_t p = threadIdx.x; p < plane; p += blockDim.x) sum += Load(src, (n * plane + p) * s.c + c);
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) Store(out, n * s.c + c, static_cast<float>(partial[0] / static_cast<double>(plane)));
}

template <typename T>
__global__ void InnerProductKernel(const T* in, int n, int inputs, const float* weights, const float* bias, int outputs,
                                   int activation, float a, float b, T* out) {
  GRID_STRIDE(i, static_cast<size_t>(n) * outputs) {
    const int o = static_cast<int>(i % outputs);
    const size_t batch = i / outputs;
    double sum = bias != nullptr ? bias[o] : 0.0;
    for (int k = 0; k < inputs; ++k) {
      sum += static_cast<double>(weights[static_cast<size_t>(o) * inputs + k]) * Load(in, batch * inputs + k);
    }
    Store(out, i, Activate(activation, a, b, static_cast<float>(sum)));
  }
}

}  // namespace

void PlanarToNhwc(const float* src, void* dst, DataType dtype, Shape4 shape, cudaStream_t stream) {
  ForType(dtype, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    PlanarToNhwcKernel<<<Blocks(shape.count()), kThreads, 0, stream>>>(src, static_cast<T*>(dst), shape);
  });
}

void NhwcToPlanar(const void* src, DataType dtype, float* dst, Shape4 shape, cudaStream_t stream) {
  ForType(dtype, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    NhwcToPlanarKernel<<<Blocks(shape.count()), kThreads, 0, stream>>>(static_cast<const T*>(src), dst, shape);
  });
}

void GatherTiles(const float* image, int image_h, int image_w, const TileOrigins& origins, bool reflect, void* out,
                 Shape4 out_shape, DataType dtype, cudaStream_t stream) {
  const size_t item = static_cast<size_t>(out_shape.h) * out_shape.w * out_shape.c;
  const dim3 grid(static_cast<unsigned>(Blocks(item)), static_cast<unsigned>(origins.count));
  ForType(dtype, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    GatherTilesKernel<<<grid, kThreads, 0, stream>>>(image, image_h, image_w, origins, reflect, static_cast<T*>(out),
                                                     out_shape);
  });
}

void PlaceTiles(const void* batch, Shape4 batch_shape, DataType dtype, const TileRects& rects, float* image,
                int image_h, int image_w, cudaStream_t stream) {
  const size_t item = static_cast<size_t>(batch_shape.h) * batch_shape.w * batch_shape.c;  // the largest rect
  const dim3 grid(static_cast<unsigned>(Blocks(item)), static_cast<unsigned>(rects.count));
  ForType(dtype, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    PlaceTilesKernel<<<grid, kThreads, 0, stream>>>(static_cast<const T*>(batch), batch_shape, rects, image, image_h,
                                                    image_w);
  });
}

void AddNearest(const float* in, int c, int in_h, int in_w, int scale, float* out, cudaStream_t stream) {
  const size_t count = static_cast<size_t>(c) * in_h * scale * in_w * scale;
  AddNearestKernel<<<Blocks(count), kThreads, 0, stream>>>(in, c, in_h, in_w, scale, out);
}

void ApplyEpilogue(const void* src, int src_h, int src_w, int offset_y, int offset_x, void* out, Shape4 out_shape,
                   DataType dtype, const Epilogue& epilogue, cudaStream_t stream) {
  ForType(dtype, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    EpilogueKernel<<<Blocks(out_shape.count()), kThreads, 0, stream>>>(
        static_cast<const T*>(src), src_h, src_w, offset_y, offset_x, static_cast<T*>(out), out_shape, epilogue);
  });
}

void DirectConvolution(const void* in, Shape4 in_shape, const float* weights, void* out, Shape4 out_shape,
                       const ConvGeometry& g, DataType dtype, cudaStream_t stream) {
  ForType(dtype, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    DirectConvolutionKernel<<<Blocks(out_shape.count()), kThreads, 0, stream>>>(
        static_cast<const T*>(in), in_shape, weights, static_cast<T*>(out), out_shape, g);
  });
}

void DirectDeconvolution(const void* in, Shape4 in_shape, const float* weights, void* out, Shape4 out_shape,
                         const ConvGeometry& g, DataType dtype, cudaStream_t stream) {
  ForType(dtype, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    DirectDeconvolutionKernel<<<Blocks(out_shape.count()), kThreads, 0, stream>>>(
        static_cast<const T*>(in), in_shape, weights, static_cast<T*>(out), out_shape, g);
  });
}

void Eltwise(const EltwiseInputs& inputs, int op, void* out, size_t count, DataType dtype, cudaStream_t stream) {
  ForType(dtype, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    EltwiseKernel<<<Blocks(count), kThreads, 0, stream>>>(inputs, op, static_cast<T*>(out), count);
  });
}

void BinaryOp(const void* a, const void* b, float scalar, Broadcast broadcast, int op, void* out, Shape4 map_shape,
              DataType dtype, cudaStream_t stream) {
  ForType(dtype, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    BinaryOpKernel<<<Blocks(map_shape.count()), kThreads, 0, stream>>>(
        static_cast<const T*>(a), static_cast<const T*>(b), scalar, broadcast, op, static_cast<T*>(out), map_shape);
  });
}

void Scale(const void* x, Shape4 shape, const void* scale_blob, const float* scale_weights, const float* bias, void* out,
           DataType dtype, cudaStream_t stream) {
  ForType(dtype, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    ScaleKernel<<<Blocks(shape.count()), kThreads, 0, stream>>>(
        static_cast<const T*>(x), shape, static_cast<const T*>(scale_blob), scale_weights, bias, static_cast<T*>(out));
  });
}

void CopyChannels(const void* src, Shape4 src_shape, void* dst, int dst_channels, int channel_offset, DataType dtype,
                  cudaStream_t stream) {
  ForType(dtype, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    CopyChannelsKernel<<<Blocks(src_shape.count()), kThreads, 0, stream>>>(
        static_cast<const T*>(src), src_shape, static_cast<T*>(dst), dst_channels, channel_offset);
  });
}

void Crop(const void* src, Shape4 src_shape, int c0, int y0, int x0, void* out, Shape4 out_shape, DataType dtype,
          cudaStream_t stream) {
  ForType(dtype, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    CropKernel<<<Blocks(out_shape.count()), kThreads, 0, stream>>>(static_cast<const T*>(src), src_shape, c0, y0, x0,
                                                                   static_cast<T*>(out), out_shape);
  });
}

void InterpNearest(const void* src, Shape4 src_shape, float inverse_y, float inverse_x, void* out, Shape4 out_shape,
                   DataType dtype, cudaStream_t stream) {
  ForType(dtype, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    InterpNearestKernel<<<Blocks(out_shape.count()), kThreads, 0, stream>>>(
        static_cast<const T*>(src), src_shape, inverse_y, inverse_x, static_cast<T*>(out), out_shape);
  });
}

void InterpBilinear(const void* src, Shape4 src_shape, void* out, Shape4 out_shape, DataType dtype,
                    cudaStream_t stream) {
  ForType(dtype, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    InterpBilinearKernel<<<Blocks(out_shape.count()), kThreads, 0, stream>>>(static_cast<const T*>(src), src_shape,
                                                                             static_cast<T*>(out), out_shape);
  });
}

void PixelShuffle(const void* src, Shape4 src_shape, int r, void* out, DataType dtype, cudaStream_t stream) {
  ForType(dtype, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    PixelShuffleKernel<<<Blocks(src_shape.count()), kThreads, 0, stream>>>(static_cast<const T*>(src), src_shape, r,
                                                                           static_cast<T*>(out));
  });
}

void GlobalAveragePool(const void* src, Shape4 src_shape, void* out, DataType dtype, cudaStream_t stream) {
  ForType(dtype, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    const unsigned blocks = static_cast<unsigned>(src_shape.n) * static_cast<unsigned>(src_shape.c);
    GlobalAveragePoolKernel<<<blocks, kThreads, 0, stream>>>(static_cast<const T*>(src), src_shape,
                                                            static_cast<T*>(out));
  });
}

void InnerProduct(const void* in, int n, int inputs, const float* weights, const float* bias, int outputs,
                  int activation, float a, float b, void* out, DataType dtype, cudaStream_t stream) {
  ForType(dtype, [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    InnerProductKernel<<<Blocks(static_cast<size_t>(n) * outputs), kThreads, 0, stream>>>(
        static_cast<const T*>(in), n, inputs, weights, bias, outputs, activation, a, b, static_cast<T*>(out));
  });
}

}  // namespace tessera::engine::cuda::kernels
