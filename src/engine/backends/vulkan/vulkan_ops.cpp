// The Vulkan backend's layers but the convolutions and those of
// vulkan_layer_ops.cpp: one op class that checks shapes on the host, allocates
// the output and dispatches a shader of vulkan_kernels.h. Semantics are the
// reference kernels' (ops/reference_ops.h).
#include <array>
#include <mutex>
#include <vector>

#include "engine/backends/vulkan/vulkan_backend.h"
#include "engine/backends/vulkan/vulkan_kernels.h"
#include "engine/backends/vulkan/vulkan_op_support.h"
#include "engine/ncnn/layer_params.h"
#include "engine/ops/reference_ops.h"

namespace tessera::engine::vulkan {
namespace {

// The channels of a map, or the length of a vector.
int Channels(const Tensor& t) { return t.dims == 3 ? t.c : t.w; }
// Values per channel: a vector's channels are its values.
uint32_t Plane(const Tensor& t) { return t.dims == 3 ? static_cast<uint32_t>(t.h * t.w) : 1u; }

class VulkanLayerOp : public Op {
 public:
  VulkanLayerOp(const VulkanBackend& backend, const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights)
      : backend_(backend), layer_(layer), weights_(weights) {}

  Result<Tensor> Run(const OpInputs& run) const override {
    Status s = CheckInputs(backend_, layer_, run);
    if (!s.ok()) return s;
    switch (layer_.kind) {
      case ncnn::LayerKind::kPRelu: return PRelu(run);
      case ncnn::LayerKind::kEltwise: return Eltwise(run);
      case ncnn::LayerKind::kBinaryOp: return BinaryOp(run);
      case ncnn::LayerKind::kConcat: return Concat(run);
      case ncnn::LayerKind::kCrop: return Crop(run);
      case ncnn::LayerKind::kInterp: return Interp(run);
      case ncnn::LayerKind::kPixelShuffle: return PixelShuffle(run);
      default: return Status(StatusCode::kUnsupported, layer_.type + " has no Vulkan shader");
    }
  }

 private:
  Result<Tensor> PRelu(const OpInputs& run) const {
    const Tensor& x = *run.tensors[0];
    const size_t slopes = weights_.weight.size();
    if (slopes != 1 && slopes != static_cast<size_t>(Channels(x))) {
      return InvalidError("PReLU slopes do not match the channels");
    }
    Result<BufferSpan> slope_span = slopes_.Get(backend_, weights_.weight);
    if (!slope_span.ok()) return slope_span.status();
    // Before OutputLike, which may take x's storage.
    const BufferSpan x_span = SpanOf(x);
    ElementwisePush push;
    push.total = static_cast<uint32_t>(CountOf(x));
    push.op = kElementwisePReLU;
    push.plane = Plane(x);
    push.channels = static_cast<uint32_t>(slopes);
    Result<Tensor> out = OutputLike(backend_, x, run, 0);
    if (!out.ok()) return out;
    const std::array<BufferSpan, 4> buffers{x_span, backend_.Unused(), SpanOf(*out), *slope_span};
    Status s = Dispatch(backend_, ShaderId::kElementwise, buffers, push);
    if (!s.ok()) return s;
    return out;
  }

  // Inputs folded left to right: out = c0 * in0 + c1 * in1, then out = out + c2 * in2, ...
  Result<Tensor> Eltwise(const OpInputs& run) const {
    const auto& in = run.tensors;
    const ncnn::EltwiseParams params = ncnn::EltwiseParams::Read(layer_.params);
    if (!params.coeffs.empty() && params.coeffs.size() != in.size()) {
      return InvalidError("Eltwise coefficients do not match inputs");
    }
    for (const Tensor* t : in) {
      if (!SameShape(*t, *in[0])) return InvalidError("Eltwise inputs differ in shape");
    }
    if (in.size() < 2) return InvalidError("Eltwise needs two inputs or more");
    std::vector<BufferSpan> spans;  // before OutputLike, which may take in[0]'s storage
    for (const Tensor* t : in) spans.push_back(SpanOf(*t));
    const uint32_t total = static_cast<uint32_t>(CountOf(*in[0]));
    Result<Tensor> out = OutputLike(backend_, *in[0], run, 0);
    if (!out.ok()) return out;
    const auto coeff = [&](size_t k) { return params.coeffs.empty() ? 1.f : params.coeffs[k]; };
    ElementwisePush push;
    push.total = total;
    push.op = params.op == ncnn::EltwiseParams::kSum       ? kElementwiseSum
              : params.op == ncnn::EltwiseParams::kProduct ? kElementwiseProduct
                                                           : kElementwiseMax;
    push.operand = kOperandSameShape;
    Status s = backend_.gpu().Run([&](CommandRecorder& r) {
      for (size_t k = 1; k < in.size(); ++k) {
        push.coeff_a = k == 1 ? coeff(0) : 1.f;
        push.coeff_b = coeff(k);
        const BufferSpan first = k == 1 ? spans[0] : SpanOf(*out);
        const std::array<BufferSpan, 4> buffers{first, spans[k], SpanOf(*out), backend_.Unused()};
        Status d = r.Dispatch(backend_.Shader(ShaderId::kElementwise), buffers, &push, sizeof(push), push.total);
        if (!d.ok()) return d;
      }
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return out;
  }

  Result<Tensor> BinaryOp(const OpInputs& run) const {
    const auto& in = run.tensors;
    const ncnn::BinaryOpParams params = ncnn::BinaryOpParams::Read(layer_.params);
    if (params.op < ncnn::BinaryOpParams::kAdd || params.op > ncnn::BinaryOpParams::kDiv) {
      return InvalidError("BinaryOp " + std::to_string(params.op) + " is not add, sub, mul or div");
    }
    ElementwisePush push;
    push.op = params.op;
    if (params.with_scalar || in.size() == 1) {
      const Tensor& a = *in[0];
      const BufferSpan a_span = SpanOf(a);
      push.total = static_cast<uint32_t>(CountOf(a));
      push.operand = kOperandScalar;
      push.scalar = params.scalar;
      Result<Tensor> out = OutputLike(backend_, a, run, 0);
      if (!out.ok()) return out;
      const std::array<BufferSpan, 4> buffers{a_span, backend_.Unused(), SpanOf(*out), backend_.Unused()};
      Status s = Dispatch(backend_, ShaderId::kElementwise, buffers, push);
      if (!s.ok()) return s;
      return out;
    }
    const Tensor& a = *in[0];
    const Tensor& b = *in[1];
    const Tensor* map = &a;
    push.operand = kOperandSameShape;
    if (!SameShape(a, b)) {
      if (a.dims == 3 && b.dims == 1 && b.w == a.c && b.n == a.n) {
        push.operand = kOperandVectorSecond;
      } else if (b.dims == 3 && a.dims == 1 && a.w == b.c && a.n == b.n) {
        push.operand = kOperandVectorFirst;
        map = &b;
      } else {
        return InvalidError("BinaryOp operands cannot be broadcast");
      }
    }
    push.total = static_cast<uint32_t>(CountOf(*map));
    push.plane = Plane(*map);
    const BufferSpan a_span = SpanOf(a), b_span = SpanOf(b);  // before OutputLike takes one
    Result<Tensor> out = OutputLike(backend_, *map, run, map == &a ? 0 : 1);
    if (!out.ok()) return out;
    const std::array<BufferSpan, 4> buffers{a_span, b_span, SpanOf(*out), backend_.Unused()};
    Status s = Dispatch(backend_, ShaderId::kElementwise, buffers, push);
    if (!s.ok()) return s;
    return out;
  }

  Result<Tensor> Concat(const OpInputs& run) const {
    const auto& in = run.tensors;
    const Tensor& first = *in[0];
    int channels = 0;
    for (const Tensor* t : in) {
      if (t->dims != first.dims || t->n != first.n || t->h != first.h || (t->dims == 3 && t->w != first.w)) {
        return InvalidError("Concat inputs differ in size");
      }
      channels += Channels(*t);
    }
    Result<Tensor> out = first.dims == 3 ? backend_.NewTensor(3, first.n, channels, first.h, first.w)
                                         : backend_.NewTensor(1, first.n, 1, 1, channels);
    if (!out.ok()) return out;
    Status s = backend_.gpu().Run([&](CommandRecorder& r) {
      int offset = 0;
      for (const Tensor* t : in) {
        // A vector is one channel of one row: its values go along x.
        const bool map = t->dims == 3;
        CopyBoxPush push;
        push.total = static_cast<uint32_t>(CountOf(*t));
        push.box_c = map ? t->c : 1;
        push.box_h = map ? t->h : 1;
        push.box_w = t->w;
        push.src_c = push.box_c, push.src_h = push.box_h, push.src_w = push.box_w;
        push.dst_c = map ? channels : 1;
        push.dst_h = push.box_h;
        push.dst_w = map ? t->w : channels;
        (map ? push.dst_c0 : push.dst_x0) = offset;
        const std::array<BufferSpan, 2> buffers{SpanOf(*t), SpanOf(*out)};
        Status d = r.Dispatch(backend_.Shader(ShaderId::kCopyBox), buffers, &push, sizeof(push), push.total);
        if (!d.ok()) return d;
        offset += Channels(*t);
      }
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return out;
  }

  Result<Tensor> Crop(const OpInputs& run) const {
    Result<ops::CropBox> box = ops::CropRegion(run.tensors, layer_.params);
    if (!box.ok()) return box.status();
    const Tensor& x = *run.tensors[0];
    Result<Tensor> out = backend_.NewTensor(3, x.n, box->c, box->h, box->w);
    if (!out.ok()) return out;
    CopyBoxPush push;
    push.total = static_cast<uint32_t>(CountOf(*out));
    push.box_c = box->c, push.box_h = box->h, push.box_w = box->w;
    push.src_c = x.c, push.src_h = x.h, push.src_w = x.w;
    push.src_c0 = box->c0, push.src_y0 = box->y0, push.src_x0 = box->x0;
    push.dst_c = box->c, push.dst_h = box->h, push.dst_w = box->w;
    const std::array<BufferSpan, 2> buffers{SpanOf(x), SpanOf(*out)};
    Status s = Dispatch(backend_, ShaderId::kCopyBox, buffers, push);
    if (!s.ok()) return s;
    return out;
  }

  Result<Tensor> Interp(const OpInputs& run) const {
    const Tensor& x = *run.tensors[0];
    if (x.dims != 3) return InvalidError("Interp needs a 3-D input");
    Result<ops::InterpSize> size = ops::InterpOutputSize(x, layer_.params);
    if (!size.ok()) return size.status();
    if (size->h == x.h && size->w == x.w) return x;
    Result<Tensor> out = backend_.NewTensor(3, x.n, x.c, size->h, size->w);
    if (!out.ok()) return out;
    const ncnn::InterpParams params = ncnn::InterpParams::Read(layer_.params);
    InterpPush push;
    push.total = static_cast<uint32_t>(CountOf(*out));
    push.c = x.c, push.in_h = x.h, push.in_w = x.w, push.out_h = size->h, push.out_w = size->w;
    push.bilinear = params.resize_type == ncnn::InterpParams::kBilinear ? 1 : 0;
    // The reference's inverse scales (ops::NearestIndices), computed the same way.
    push.inv_y = params.output_height != 0 ? static_cast<float>(x.h) / size->h : 1.f / params.height_scale;
    push.inv_x = params.output_width != 0 ? static_cast<float>(x.w) / size->w : 1.f / params.width_scale;
    push.ratio_y = static_cast<float>(static_cast<double>(x.h) / size->h);
    push.ratio_x = static_cast<float>(static_cast<double>(x.w) / size->w);
    const std::array<BufferSpan, 2> buffers{SpanOf(x), SpanOf(*out)};
    Status s = Dispatch(backend_, ShaderId::kInterp, buffers, push);
    if (!s.ok()) return s;
    return out;
  }

  Result<Tensor> PixelShuffle(const OpInputs& run) const {
    const Tensor& x = *run.tensors[0];
    const int r = layer_.params.GetInt(0, 1);
    if (x.dims != 3 || r <= 0 || x.c % (r * r) != 0) return InvalidError("PixelShuffle channels not divisible by r*r");
    Result<Tensor> out = backend_.NewTensor(3, x.n, x.c / (r * r), x.h * r, x.w * r);
    if (!out.ok()) return out;
    PixelShufflePush push;
    push.total = static_cast<uint32_t>(CountOf(*out));
    push.out_c = out->c, push.in_h = x.h, push.in_w = x.w, push.r = r;
    const std::array<BufferSpan, 2> buffers{SpanOf(x), SpanOf(*out)};
    Status s = Dispatch(backend_, ShaderId::kPixelShuffle, buffers, push);
    if (!s.ok()) return s;
    return out;
  }

  const VulkanBackend& backend_;
  const ncnn::LayerSpec& layer_;
  const ncnn::LayerWeights& weights_;
  UploadedOnce slopes_;
};

}  // namespace

std::unique_ptr<Op> MakeLayerOp(const VulkanBackend& backend, const ncnn::LayerSpec& layer,
                                const ncnn::LayerWeights& weights) {
  switch (layer.kind) {
    case ncnn::LayerKind::kPRelu:
    case ncnn::LayerKind::kEltwise:
    case ncnn::LayerKind::kBinaryOp:
    case ncnn::LayerKind::kConcat:
    case ncnn::LayerKind::kCrop:
    case ncnn::LayerKind::kPixelShuffle: return std::make_unique<VulkanLayerOp>(backend, layer, weights);
    case ncnn::LayerKind::kInterp: {
      const int type = ncnn::InterpParams::Read(layer.params).resize_type;
      if (type == ncnn::InterpParams::kBicubic) return MakeBicubicInterpOp(backend, layer);
      if (type != ncnn::InterpParams::kNearest && type != ncnn::InterpParams::kBilinear) return nullptr;
      return std::make_unique<VulkanLayerOp>(backend, layer, weights);
    }
    case ncnn::LayerKind::kScale:
    case ncnn::LayerKind::kPooling:
    case ncnn::LayerKind::kInnerProduct: return MakeSqueezeExcitationOp(backend, layer, weights);
    default: return nullptr;
  }
}

}  // namespace tessera::engine::vulkan
