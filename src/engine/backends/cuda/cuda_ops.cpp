// Every layer but the convolutions on the CUDA backend: one op class that
// checks shapes on the host, allocates the output and enqueues a kernel of
// cuda_kernels.h. Semantics are the reference kernels' (ops/reference_ops.h).
#include <cmath>
#include <mutex>

#include "engine/backends/cuda/cuda_backend.h"
#include "engine/ncnn/layer_params.h"
#include "engine/ops/reference_ops.h"

namespace tessera::engine::cuda {
namespace {

bool SameShape(const Tensor& a, const Tensor& b) {
  return a.dims == b.dims && a.n == b.n && a.c == b.c && a.h == b.h && a.w == b.w;
}

// The channels of a map, or the length of a vector.
int Channels(const Tensor& t) { return t.dims == 3 ? t.c : t.w; }

class CudaLayerOp : public Op {
 public:
  CudaLayerOp(const CudaBackend& backend, const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights)
      : backend_(backend), layer_(layer), weights_(weights) {}

  bool ReadsLayout(size_t, Layout layout) const override { return layout == Layout::kChannelsLast; }

  Result<Tensor> Run(const OpInputs& run) const override {
    for (const Tensor* t : run.tensors) {
      if (!t->on_device() || t->dtype != backend_.dtype()) return InvalidError("input is not a tensor of this CUDA backend");
    }
    Result<CudaThreadContext*> context = backend_.Context();
    if (!context.ok()) return context.status();
    Result<Tensor> out = Dispatch(run, **context);
    if (!out.ok()) return out;
    Status launched = LastLaunchStatus(layer_.type + " kernel");
    if (!launched.ok()) return launched;
    return out;
  }

 private:
  Result<Tensor> Dispatch(const OpInputs& run, const CudaThreadContext& context) const {
    const auto& in = run.tensors;
    const cudaStream_t stream = context.stream;
    const DataType dtype = backend_.dtype();
    const ncnn::ParamDict& p = layer_.params;
    switch (layer_.kind) {
      case ncnn::LayerKind::kPRelu: {
        Status s = EnsureWeights(context);
        if (!s.ok()) return s;
        const int slopes = static_cast<int>(weights_.weight.size());
        if (slopes != 1 && slopes != Channels(*in[0])) return InvalidError("PReLU slopes do not match the channels");
        Result<Tensor> out = OutputLike(*in[0], run, 0);
        if (!out.ok()) return out;
        kernels::Epilogue e;
        e.ops[0].kind = kernels::PostOp::kPrelu;
        e.ops[0].slopes = static_cast<const float*>(weight_.data());
        e.ops[0].slope_count = slopes;
        e.count = 1;
        const kernels::Shape4 shape = ShapeOf(*out);
        kernels::ApplyEpilogue(DevicePointer(*in[0]), shape.h, shape.w, 0, 0, DevicePointer(*out), shape, dtype, e, stream);
        return out;
      }
      case ncnn::LayerKind::kEltwise: {
        const ncnn::EltwiseParams params = ncnn::EltwiseParams::Read(p);
        if (in.size() > static_cast<size_t>(kernels::kMaxEltwiseInputs)) return InvalidError("Eltwise has too many inputs");
        if (!params.coeffs.empty() && params.coeffs.size() != in.size()) {
          return InvalidError("Eltwise coefficients do not match inputs");
        }
        kernels::EltwiseInputs inputs;
        for (size_t k = 0; k < in.size(); ++k) {
          if (!SameShape(*in[k], *in[0])) return InvalidError("Eltwise inputs differ in shape");
          inputs.data[k] = DevicePointer(*in[k]);
          inputs.coeff[k] = params.coeffs.empty() ? 1.f : params.coeffs[k];
        }
        inputs.count = static_cast<int>(in.size());
        Result<Tensor> out = OutputLike(*in[0], run, 0);
        if (!out.ok()) return out;
        kernels::Eltwise(inputs, params.op, DevicePointer(*out), ShapeOf(*out).count(), dtype, stream);
        return out;
      }
      case ncnn::LayerKind::kBinaryOp: {
        const ncnn::BinaryOpParams params = ncnn::BinaryOpParams::Read(p);
        if (params.with_scalar || in.size() == 1) {
          Result<Tensor> out = OutputLike(*in[0], run, 0);
          if (!out.ok()) return out;
          kernels::BinaryOp(DevicePointer(*in[0]), nullptr, params.scalar, kernels::Broadcast::kScalar, params.op,
                            DevicePointer(*out), ShapeOf(*out), dtype, stream);
          return out;
        }
        const Tensor& a = *in[0];
        const Tensor& b = *in[1];
        kernels::Broadcast broadcast = kernels::Broadcast::kNone;
        const Tensor* map = &a;
        if (!SameShape(a, b)) {
          if (a.dims == 3 && b.dims == 1 && b.w == a.c && b.n == a.n) {
            broadcast = kernels::Broadcast::kVectorSecond;
          } else if (b.dims == 3 && a.dims == 1 && a.w == b.c && a.n == b.n) {
            broadcast = kernels::Broadcast::kVectorFirst;
            map = &b;
          } else {
            return InvalidError("BinaryOp operands cannot be broadcast");
          }
        }
        Result<Tensor> out = OutputLike(*map, run, map == &a ? 0 : 1);
        if (!out.ok()) return out;
        kernels::BinaryOp(DevicePointer(a), DevicePointer(b), 0.f, broadcast, params.op, DevicePointer(*out), ShapeOf(*out),
                          dtype, stream);
        return out;
      }
      case ncnn::LayerKind::kScale: {
        const Tensor& x = *in[0];
        Status s = EnsureWeights(context);
        if (!s.ok()) return s;
        const int channels = Channels(x);
        const bool from_blob = in.size() == 2;
        if (from_blob ? (in[1]->dims == 3 ? in[1]->c : in[1]->w) != channels
                      : static_cast<int>(weights_.weight.size()) != channels) {
          return InvalidError("Scale size does not match the channels");
        }
        const bool bias = p.GetInt(1, 0) != 0 && !weights_.bias.empty();
        Result<Tensor> out = OutputLike(x, run, 0);
        if (!out.ok()) return out;
        kernels::Scale(DevicePointer(x), ShapeOf(x), from_blob ? DevicePointer(*in[1]) : nullptr,
                       from_blob ? nullptr : static_cast<const float*>(weight_.data()),
                       bias ? static_cast<const float*>(bias_.data()) : nullptr, DevicePointer(*out), dtype, stream);
        return out;
      }
      case ncnn::LayerKind::kConcat: {
        int channels = 0;
        for (const Tensor* t : in) {
          if (t->dims != in[0]->dims || t->n != in[0]->n || t->h != in[0]->h || (t->dims == 3 && t->w != in[0]->w)) {
            return InvalidError("Concat inputs differ in size");
          }
          channels += Channels(*t);
        }
        const Tensor& first = *in[0];
        Result<Tensor> out = first.dims == 3 ? backend_.NewTensor(3, first.n, channels, first.h, first.w)
                                             : backend_.NewTensor(1, first.n, 1, 1, channels);
        if (!out.ok()) return out;
        int offset = 0;
        for (const Tensor* t : in) {
          kernels::CopyChannels(DevicePointer(*t), ShapeOf(*t), DevicePointer(*out), channels, offset, dtype, stream);
          offset += Channels(*t);
        }
        return out;
      }
      case ncnn::LayerKind::kCrop: {
        Result<ops::CropBox> box = ops::CropRegion(in, p);
        if (!box.ok()) return box.status();
        Result<Tensor> out = backend_.NewTensor(3, in[0]->n, box->c, box->h, box->w);
        if (!out.ok()) return out;
        kernels::Crop(DevicePointer(*in[0]), ShapeOf(*in[0]), box->c0, box->y0, box->x0, DevicePointer(*out),
                      ShapeOf(*out), dtype, stream);
        return out;
      }
      case ncnn::LayerKind::kInterp: {
        const Tensor& x = *in[0];
        if (x.dims != 3) return InvalidError("Interp needs a 3-D input");
        Result<ops::InterpSize> size = ops::InterpOutputSize(x, p);
        if (!size.ok()) return size.status();
        if (size->h == x.h && size->w == x.w) return x;
        Result<Tensor> out = backend_.NewTensor(3, x.n, x.c, size->h, size->w);
        if (!out.ok()) return out;
        const ncnn::InterpParams params = ncnn::InterpParams::Read(p);
        if (params.resize_type == ncnn::InterpParams::kNearest) {
          // The reference's inverse scales, computed once here the same way.
          const float inverse_y = params.output_height != 0 ? static_cast<float>(x.h) / size->h : 1.f / params.height_scale;
          const float inverse_x = params.output_width != 0 ? static_cast<float>(x.w) / size->w : 1.f / params.width_scale;
          kernels::InterpNearest(DevicePointer(x), ShapeOf(x), inverse_y, inverse_x, DevicePointer(*out), ShapeOf(*out),
                                 dtype, stream);
        } else {
          kernels::InterpBilinear(DevicePointer(x), ShapeOf(x), DevicePointer(*out), ShapeOf(*out), dtype, stream);
        }
        return out;
      }
      case ncnn::LayerKind::kPixelShuffle: {
        const Tensor& x = *in[0];
        const int r = p.GetInt(0, 1);
        if (x.dims != 3 || r <= 0 || x.c % (r * r) != 0) return InvalidError("PixelShuffle channels not divisible by r*r");
        Result<Tensor> out = backend_.NewTensor(3, x.n, x.c / (r * r), x.h * r, x.w * r);
        if (!out.ok()) return out;
        kernels::PixelShuffle(DevicePointer(x), ShapeOf(x), r, DevicePointer(*out), dtype, stream);
        return out;
      }
      case ncnn::LayerKind::kPooling: {
        const Tensor& x = *in[0];
        if (x.dims != 3) return InvalidError("Pooling needs a 3-D input");
        Result<Tensor> out = backend_.NewTensor(1, x.n, 1, 1, x.c);
        if (!out.ok()) return out;
        kernels::GlobalAveragePool(DevicePointer(x), ShapeOf(x), DevicePointer(*out), dtype, stream);
        return out;
      }
      case ncnn::LayerKind::kInnerProduct: {
        const Tensor& x = *in[0];
        // NHWC flattens a map in another order than ncnn's c x h x w: vectors only.
        if (x.dims == 3 && x.h * x.w != 1) {
          return Status(StatusCode::kUnsupported, "InnerProduct on a feature map (only vectors on the CUDA backend)");
        }
        const ncnn::InnerProductParams params = ncnn::InnerProductParams::Read(p);
        const int inputs = Channels(x);
        if (weights_.weight.size() != static_cast<size_t>(inputs) * params.num_output) {
          return InvalidError("InnerProduct weights do not match an input of " + std::to_string(inputs));
        }
        Status s = EnsureWeights(context);
        if (!s.ok()) return s;
        Result<Tensor> out = backend_.NewTensor(1, x.n, 1, 1, params.num_output);
        if (!out.ok()) return out;
        const float a = params.activation_params.size() > 0 ? params.activation_params[0]
                                                             : (params.activation_type == 3 ? -INFINITY : 0.f);
        const float b = params.activation_params.size() > 1 ? params.activation_params[1] : INFINITY;
        kernels::InnerProduct(DevicePointer(x), x.n, inputs, static_cast<const float*>(weight_.data()),
                              params.bias ? static_cast<const float*>(bias_.data()) : nullptr, params.num_output,
                              params.activation_type, a, b, DevicePointer(*out), dtype, stream);
        return out;
      }
      default:
        return Status(StatusCode::kUnsupported, layer_.type + " has no CUDA kernel");
    }
  }

  // Input `index`'s storage when the caller gave it up (the kernels run in
  // place element by element), else a new tensor of its shape.
  Result<Tensor> OutputLike(const Tensor& like, const OpInputs& run, size_t index) const {
    if (index < run.writable.size() && run.writable[index] != nullptr && SameShape(*run.writable[index], like)) {
      return std::move(*run.writable[index]);
    }
    return backend_.NewTensor(like.dims, like.n, like.c, like.h, like.w);
  }

  // The layer's fp32 weights and bias on the device, uploaded on first use.
  Status EnsureWeights(const CudaThreadContext& context) const {
    std::lock_guard lock(weights_mutex_);
    if (uploaded_) return Status::Ok();
    if (!weights_.weight.empty()) {
      Result<gpu::DeviceBlock> w = backend_.Upload(weights_.weight, /*half=*/false, context);
      if (!w.ok()) return w.status();
      weight_ = std::move(w).value();
    }
    if (!weights_.bias.empty()) {
      Result<gpu::DeviceBlock> b = backend_.Upload(weights_.bias, /*half=*/false, context);
      if (!b.ok()) return b.status();
      bias_ = std::move(b).value();
    }
    uploaded_ = true;
    return Status::Ok();
  }

  const CudaBackend& backend_;
  const ncnn::LayerSpec& layer_;
  const ncnn::LayerWeights& weights_;
  mutable std::mutex weights_mutex_;
  mutable bool uploaded_ = false;
  mutable gpu::DeviceBlock weight_;
  mutable gpu::DeviceBlock bias_;
};

}  // namespace

std::unique_ptr<Op> MakeLayerOp(const CudaBackend& backend, const ncnn::LayerSpec& layer,
                                const ncnn::LayerWeights& weights) {
  switch (layer.kind) {
    case ncnn::LayerKind::kPRelu:
    case ncnn::LayerKind::kEltwise:
    case ncnn::LayerKind::kBinaryOp:
    case ncnn::LayerKind::kScale:
    case ncnn::LayerKind::kConcat:
    case ncnn::LayerKind::kCrop:
    case ncnn::LayerKind::kPixelShuffle:
    case ncnn::LayerKind::kPooling:
    case ncnn::LayerKind::kInnerProduct:
      return std::make_unique<CudaLayerOp>(backend, layer, weights);
    case ncnn::LayerKind::kInterp: {
      // Bicubic stays on the host backend (as with oneDNN); nearest and bilinear run here.
      const int type = ncnn::InterpParams::Read(layer.params).resize_type;
      if (type != ncnn::InterpParams::kNearest && type != ncnn::InterpParams::kBilinear) return nullptr;
      return std::make_unique<CudaLayerOp>(backend, layer, weights);
    }
    default:
      return nullptr;
  }
}

}  // namespace tessera::engine::cuda
