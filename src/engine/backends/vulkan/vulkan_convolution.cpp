// Convolution and Deconvolution on the Vulkan backend: direct shaders, fp32 —
// conv3x3.comp and conv1x1.comp (blocks of outputs per invocation, for stride
// 1 and dilation 1: every convolution of most models), conv2d.comp for the
// other convolutions, deconv2d.comp (one invocation per output value) — with
// bias, the layer's activation and up to two following layers (a PReLU and a
// residual Eltwise sum or BinaryOp add, one of each) fused into the same pass.
// Weights stay in ncnn's order ([out][in][kh][kw]), uploaded once per op.
#include <array>
#include <cmath>
#include <mutex>

#include "engine/backends/vulkan/vulkan_backend.h"
#include "engine/backends/vulkan/vulkan_kernels.h"
#include "engine/backends/vulkan/vulkan_op_support.h"
#include "engine/ncnn/layer_params.h"

namespace tessera::engine::vulkan {
namespace {

class VulkanConvolution : public Op {
 public:
  VulkanConvolution(const VulkanBackend& backend, const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights,
                    int in_channels)
      : backend_(backend),
        layer_(layer),
        weights_(weights),
        k_(ncnn::ConvParams::Read(layer.params)),
        deconv_(layer.kind == ncnn::LayerKind::kDeconvolution),
        in_channels_(in_channels) {}

  bool Fuse(const ncnn::LayerSpec& next, const ncnn::LayerWeights& next_weights, int slot, Fusion* fusion) override {
    if (post_count_ >= kMaxConvPostOps) return false;
    if (next.kind == ncnn::LayerKind::kPRelu) {
      const size_t n = next_weights.weight.size();
      if (slopes_ != nullptr || (n != 1 && n != static_cast<size_t>(k_.num_output))) return false;
      slopes_ = &next_weights.weight;
      post_[post_count_++] = kConvPostPReLU;
      return true;
    }
    if (next.kind != ncnn::LayerKind::kEltwise && next.kind != ncnn::LayerKind::kBinaryOp) return false;
    if (has_sum_ || next.bottoms.size() != 2) return false;
    if (next.kind == ncnn::LayerKind::kEltwise) {
      const ncnn::EltwiseParams e = ncnn::EltwiseParams::Read(next.params);
      if (e.op != ncnn::EltwiseParams::kSum || (!e.coeffs.empty() && e.coeffs.size() != 2)) return false;
      if (!e.coeffs.empty()) self_coeff_ = e.coeffs[slot], other_coeff_ = e.coeffs[1 - slot];
    } else {
      const ncnn::BinaryOpParams b = ncnn::BinaryOpParams::Read(next.params);
      if (b.op != ncnn::BinaryOpParams::kAdd || b.with_scalar) return false;
    }
    has_sum_ = true;
    post_[post_count_++] = kConvPostSum;
    fusion->extra_bottoms.push_back(next.bottoms[1 - slot]);
    return true;
  }

  Result<Tensor> Run(const OpInputs& run) const override {
    const Tensor& in = *run.tensors[0];
    const BufferSpan in_span = SpanOf(in);
    if (in_span.buffer == VK_NULL_HANDLE || in.dtype != backend_.dtype() || in.dims != 3) {
      return InvalidError(layer_.type + " needs a 3-D tensor of this Vulkan backend");
    }
    if (in.c != in_channels_) {
      return InvalidError(layer_.type + " weights do not match " + std::to_string(in.c) + " input channels");
    }
    Status s = Prepare();
    if (!s.ok()) return s;

    const int out_w = k_.OutW(in.w, deconv_), out_h = k_.OutH(in.h, deconv_);
    if (out_w <= 0 || out_h <= 0) {
      return InvalidError(layer_.type + " output would be empty (an input smaller than its kernel, or cropped away)");
    }
    Result<Tensor> out = backend_.NewTensor(3, in.n, k_.num_output, out_h, out_w);
    if (!out.ok()) return out;

    ConvPush push;
    const ShaderId shader = ShaderFor();
    uint64_t invocations = 0;
    if (shader == ShaderId::kDeconv2d) {
      invocations = CountOf(*out);
    } else if (shader == ShaderId::kConv2d) {
      // conv2d.comp computes kConvChannelGroup output channels per invocation.
      invocations = static_cast<uint64_t>(out->n) * ((out->c + kConvChannelGroup - 1) / kConvChannelGroup) * out_h * out_w;
    } else {
      invocations = BlockedInvocations(out->n, out->c, out_h, out_w);
    }
    if (invocations > UINT32_MAX) return Status(StatusCode::kOutOfMemory, layer_.type + ": a tile too large for one dispatch");
    push.total = static_cast<uint32_t>(invocations);
    push.n = in.n, push.in_c = in.c, push.in_h = in.h, push.in_w = in.w;
    push.out_c = out->c, push.out_h = out_h, push.out_w = out_w;
    push.kw = k_.kw, push.kh = k_.kh, push.dw = k_.dw, push.dh = k_.dh, push.sw = k_.sw, push.sh = k_.sh;
    push.pad_left = k_.pad_left, push.pad_top = k_.pad_top;
    push.has_bias = bias_ ? 1 : 0;
    push.activation = k_.activation_type;
    push.act_a =
        k_.activation_params.size() > 0 ? k_.activation_params[0] : (k_.activation_type == 3 ? -INFINITY : 0.f);
    push.act_b = k_.activation_params.size() > 1 ? k_.activation_params[1] : INFINITY;
    push.post0 = post_[0], push.post1 = post_[1];
    push.slope_count = slopes_ != nullptr ? static_cast<int32_t>(slopes_->size()) : 0;
    push.self_coeff = self_coeff_, push.other_coeff = other_coeff_;
    BufferSpan other = backend_.Unused();
    if (has_sum_) {
      if (run.tensors.size() < 2) return InternalError("fused input missing");
      const Tensor& o = *run.tensors[1];
      const bool same = o.dims == 3 && o.n == out->n && o.c == out->c && o.h == out->h && o.w == out->w;
      const bool vector = o.dims == 1 && o.n == out->n && o.w == out->c;
      other = SpanOf(o);
      if (other.buffer == VK_NULL_HANDLE || (!same && !vector)) {
        return InvalidError("the residual added to " + layer_.type + " does not match its output");
      }
      push.other_vector = vector ? 1 : 0;
    }
    const std::array<BufferSpan, 6> buffers{in_span,
                                            SpanOf(weights_block_),
                                            bias_ ? SpanOf(bias_) : backend_.Unused(),
                                            SpanOf(*out),
                                            slopes_block_ ? SpanOf(slopes_block_) : backend_.Unused(),
                                            other};
    s = Dispatch(backend_, shader, buffers, push);
    if (!s.ok()) return Status(s.code(), layer_.type + " on " + backend_.device().Name() + ": " + s.message());
    return out;
  }

 private:
  // The blocked shaders (conv_block.glsl) for stride 1, dilation 1 and a 3x3
  // or 1x1 kernel, the direct conv2d.comp for every other convolution.
  ShaderId ShaderFor() const {
    if (deconv_) return ShaderId::kDeconv2d;
    const bool unit = k_.sw == 1 && k_.sh == 1 && k_.dw == 1 && k_.dh == 1;
    if (unit && k_.kw == 3 && k_.kh == 3) return ShaderId::kConv3x3;
    if (unit && k_.kw == 1 && k_.kh == 1) return ShaderId::kConv1x1;
    return ShaderId::kConv2d;
  }

  // Invocations of a blocked shader: 64 per group of 64 column blocks, times
  // the channel blocks (conv_block.glsl's dispatch rule).
  static uint64_t BlockedInvocations(int n, int out_c, int out_h, int out_w) {
    const uint64_t x_blocks = (out_w + kConvBlockColumns - 1) / kConvBlockColumns;
    const uint64_t spatial = static_cast<uint64_t>(n) * out_h * x_blocks;
    const uint64_t channel_blocks = (out_c + kConvBlockChannels - 1) / kConvBlockChannels;
    return (spatial + 63) / 64 * 64 * channel_blocks;
  }

  // Weights, bias and fused slopes on the device, once.
  Status Prepare() const {
    std::lock_guard lock(mutex_);
    if (weights_block_) return Status::Ok();
    if (k_.bias && !weights_.bias.empty()) {
      Result<gpu::DeviceBlock> b = backend_.Upload(weights_.bias);
      if (!b.ok()) return b.status();
      bias_ = std::move(b).value();
    }
    if (slopes_ != nullptr) {
      Result<gpu::DeviceBlock> slopes = backend_.Upload(*slopes_);
      if (!slopes.ok()) return slopes.status();
      slopes_block_ = std::move(slopes).value();
    }
    Result<gpu::DeviceBlock> w = backend_.Upload(weights_.weight);
    if (!w.ok()) return w.status();
    weights_block_ = std::move(w).value();
    return Status::Ok();
  }

  const VulkanBackend& backend_;
  const ncnn::LayerSpec& layer_;
  const ncnn::LayerWeights& weights_;
  const ncnn::ConvParams k_;
  const bool deconv_;
  const int in_channels_;
  // Fused layers, in order (set while the executor is built, read-only after).
  int post_[kMaxConvPostOps] = {0, 0};
  int post_count_ = 0;
  const std::vector<float>* slopes_ = nullptr;
  bool has_sum_ = false;
  float self_coeff_ = 1.f, other_coeff_ = 1.f;

  mutable std::mutex mutex_;
  mutable gpu::DeviceBlock weights_block_;
  mutable gpu::DeviceBlock bias_;
  mutable gpu::DeviceBlock slopes_block_;
};

}  // namespace

std::unique_ptr<Op> MakeConvolutionOp(const VulkanBackend& backend, const ncnn::LayerSpec& layer,
                                      const ncnn::LayerWeights& weights) {
  const ncnn::ConvParams k = ncnn::ConvParams::Read(layer.params);
  // ncnn's negative "same" paddings, shapes the shader cannot index and
  // activations it does not know stay on the CPU backend.
  if (k.num_output <= 0 || k.kw <= 0 || k.kh <= 0 || k.sw <= 0 || k.sh <= 0 || k.dw <= 0 || k.dh <= 0 ||
      k.pad_left < 0 || k.pad_right < 0 || k.pad_top < 0 || k.pad_bottom < 0 || k.activation_type < 0 ||
      k.activation_type > 4) {
    return nullptr;
  }
  const size_t per_input = static_cast<size_t>(k.num_output) * k.kw * k.kh;
  if (weights.weight.empty() || weights.weight.size() % per_input != 0) return nullptr;
  if (k.bias && weights.bias.size() != static_cast<size_t>(k.num_output)) return nullptr;
  return std::make_unique<VulkanConvolution>(backend, layer, weights,
                                             static_cast<int>(weights.weight.size() / per_input));
}

}  // namespace tessera::engine::vulkan
