// The layers of the models' squeeze-excitation blocks (Real-CUGAN, waifu2x
// cunet: global average Pooling, InnerProduct, Scale) and bicubic Interp
// (realesr-animevideov3-x2 and -x3 shrink their input with it) on the Vulkan
// backend, so that no layer of the 26 models leaves the device. Semantics are
// the reference kernels' (ops/reference_ops.h); each item of a batch is
// computed exactly as it is alone.
#include <array>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/backends/vulkan/vulkan_backend.h"
#include "engine/backends/vulkan/vulkan_kernels.h"
#include "engine/backends/vulkan/vulkan_op_support.h"
#include "engine/ncnn/layer_params.h"
#include "engine/ops/reference_ops.h"

namespace tessera::engine::vulkan {
namespace {

// ncnn's activation parameters with the reference kernel's defaults.
void SetActivation(int type, const std::vector<float>& params, InnerProductPush& push) {
  push.activation = type;
  push.act_a = params.size() > 0 ? params[0] : (type == 3 ? -INFINITY : 0.f);
  push.act_b = params.size() > 1 ? params[1] : INFINITY;
}

// Scale: x times a per-channel scale (the layer's own, or a second input blob
// with one scale per channel of each item), plus the layer's bias.
class VulkanScale : public Op {
 public:
  VulkanScale(const VulkanBackend& backend, const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights)
      : backend_(backend), layer_(layer), weights_(weights) {}

  Result<Tensor> Run(const OpInputs& run) const override {
    Status s = CheckInputs(backend_, layer_, run);
    if (!s.ok()) return s;
    const Tensor& x = *run.tensors[0];
    const uint64_t channels = x.dims == 3 ? static_cast<uint64_t>(x.c) : static_cast<uint64_t>(x.w);
    const bool from_blob = run.tensors.size() == 2;
    ChannelScalePush push;
    push.total = static_cast<uint32_t>(CountOf(x));
    push.plane = x.dims == 3 ? static_cast<uint32_t>(x.h * x.w) : 1u;
    // A blob's scales are activations (the backend's storage type), the layer's own fp32 weights.
    BufferSpan blob_scales = backend_.Unused(), own_scales = backend_.Unused();
    if (from_blob) {
      // One scale per channel of each item: the blob's values run through the batch with x's.
      if (CountOf(*run.tensors[1]) != channels * x.n) return InvalidError("Scale size does not match the channels");
      blob_scales = SpanOf(*run.tensors[1]);
      push.channels = static_cast<uint32_t>(channels * x.n);
    } else {
      if (weights_.weight.size() != channels) return InvalidError("Scale size does not match the channels");
      Result<BufferSpan> own = scale_.Get(backend_, weights_.weight);
      if (!own.ok()) return own.status();
      own_scales = *own;
      push.channels = static_cast<uint32_t>(channels);
      push.own_scales = 1;
    }
    BufferSpan bias = backend_.Unused();
    // The reference adds a bias with the flag set and the values present
    // (a Scale whose scales come from a blob reads none from the .bin).
    if (layer_.params.GetInt(1, 0) != 0 && !weights_.bias.empty()) {
      if (weights_.bias.size() != channels) return InvalidError("Scale bias does not match the channels");
      Result<BufferSpan> own = bias_.Get(backend_, weights_.bias);
      if (!own.ok()) return own.status();
      bias = *own;
      push.has_bias = 1;
    }
    const BufferSpan x_span = SpanOf(x);  // before the output may take x's storage
    Result<Tensor> out = OutputLike(backend_, x, run, 0);
    if (!out.ok()) return out;
    const std::array<BufferSpan, 5> buffers{x_span, blob_scales, bias, SpanOf(*out), own_scales};
    s = Dispatch(backend_, ShaderId::kChannelScale, buffers, push);
    if (!s.ok()) return s;
    return out;
  }

 private:
  const VulkanBackend& backend_;
  const ncnn::LayerSpec& layer_;
  const ncnn::LayerWeights& weights_;
  UploadedOnce scale_, bias_;
};

// Global average Pooling: each channel of each item to its mean, a vector per item.
class VulkanGlobalPool : public Op {
 public:
  VulkanGlobalPool(const VulkanBackend& backend, const ncnn::LayerSpec& layer) : backend_(backend), layer_(layer) {}

  Result<Tensor> Run(const OpInputs& run) const override {
    Status s = CheckInputs(backend_, layer_, run);
    if (!s.ok()) return s;
    const Tensor& x = *run.tensors[0];
    if (x.dims != 3) return InvalidError("Pooling needs a 3-D input");
    Result<Tensor> out = backend_.NewTensor(1, x.n, 1, 1, x.c);
    if (!out.ok()) return out;
    GlobalPoolPush push;
    push.planes = static_cast<uint32_t>(x.n * x.c);
    push.plane = static_cast<uint32_t>(x.h * x.w);
    push.total = push.planes * kPoolGroupSize;
    const std::array<BufferSpan, 2> buffers{SpanOf(x), SpanOf(*out)};
    s = Dispatch(backend_, ShaderId::kGlobalPool, buffers, push);
    if (!s.ok()) return s;
    return out;
  }

 private:
  const VulkanBackend& backend_;
  const ncnn::LayerSpec& layer_;
};

// InnerProduct: each item's values (read flat) through the weights, plus bias,
// then the activation; a vector per item.
class VulkanInnerProduct : public Op {
 public:
  VulkanInnerProduct(const VulkanBackend& backend, const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights)
      : backend_(backend), layer_(layer), weights_(weights), params_(ncnn::InnerProductParams::Read(layer.params)) {}

  Result<Tensor> Run(const OpInputs& run) const override {
    Status s = CheckInputs(backend_, layer_, run);
    if (!s.ok()) return s;
    const Tensor& x = *run.tensors[0];
    const uint64_t inputs = CountOf(x) / static_cast<uint64_t>(x.n);
    if (weights_.weight.size() != inputs * static_cast<uint64_t>(params_.num_output)) {
      return InvalidError("InnerProduct weights do not match an input of " + std::to_string(inputs));
    }
    Result<BufferSpan> weight = weight_.Get(backend_, weights_.weight);
    if (!weight.ok()) return weight.status();
    BufferSpan bias = backend_.Unused();
    InnerProductPush push;
    if (params_.bias) {
      if (weights_.bias.size() != static_cast<size_t>(params_.num_output)) {
        return InvalidError("InnerProduct bias does not match num_output");
      }
      Result<BufferSpan> own = bias_.Get(backend_, weights_.bias);
      if (!own.ok()) return own.status();
      bias = *own;
      push.has_bias = 1;
    }
    Result<Tensor> out = backend_.NewTensor(1, x.n, 1, 1, params_.num_output);
    if (!out.ok()) return out;
    push.total = static_cast<uint32_t>(CountOf(*out));
    push.inputs = static_cast<uint32_t>(inputs);
    push.num_output = static_cast<uint32_t>(params_.num_output);
    SetActivation(params_.activation_type, params_.activation_params, push);
    const std::array<BufferSpan, 4> buffers{SpanOf(x), *weight, bias, SpanOf(*out)};
    s = Dispatch(backend_, ShaderId::kInnerProduct, buffers, push);
    if (!s.ok()) return s;
    return out;
  }

 private:
  const VulkanBackend& backend_;
  const ncnn::LayerSpec& layer_;
  const ncnn::LayerWeights& weights_;
  const ncnn::InnerProductParams params_;
  UploadedOnce weight_, bias_;
};

// Bicubic Interp with the reference's own taps (ops::BicubicTaps), uploaded
// once per input and output size.
class VulkanBicubic : public Op {
 public:
  VulkanBicubic(const VulkanBackend& backend, const ncnn::LayerSpec& layer) : backend_(backend), layer_(layer) {}

  Result<Tensor> Run(const OpInputs& run) const override {
    Status s = CheckInputs(backend_, layer_, run);
    if (!s.ok()) return s;
    const Tensor& x = *run.tensors[0];
    if (x.dims != 3) return InvalidError("Interp needs a 3-D input");
    Result<ops::InterpSize> size = ops::InterpOutputSize(x, layer_.params);
    if (!size.ok()) return size.status();
    if (size->h == x.h && size->w == x.w) return x;  // as the reference: the input itself
    // Held for the dispatch: another size's taps may push these out of the cache meanwhile.
    Result<std::shared_ptr<gpu::DeviceBlock>> taps = Taps(x.h, x.w, size->h, size->w);
    if (!taps.ok()) return taps.status();
    backend_.KeepWhileRecorded(*taps);  // a recording of this dispatch may outlive their place in the cache
    Result<Tensor> out = backend_.NewTensor(3, x.n, x.c, size->h, size->w);
    if (!out.ok()) return out;
    BicubicPush push;
    push.total = static_cast<uint32_t>(CountOf(*out));
    push.in_h = x.h, push.in_w = x.w, push.out_h = size->h, push.out_w = size->w;
    const std::array<BufferSpan, 3> buffers{SpanOf(x), SpanOf(*out), SpanOf(**taps)};
    s = Dispatch(backend_, ShaderId::kBicubic, buffers, push);
    if (!s.ok()) return s;
    return out;
  }

 private:
  // Tiles come in a few sizes (the grid's interior and its last row and
  // column); past kKeptSizes sizes one is dropped.
  static constexpr size_t kKeptSizes = 8;

  Result<std::shared_ptr<gpu::DeviceBlock>> Taps(int in_h, int in_w, int out_h, int out_w) const {
    const std::array<int, 4> key{in_h, in_w, out_h, out_w};
    std::lock_guard lock(mutex_);
    if (auto it = taps_.find(key); it != taps_.end()) return it->second;
    std::vector<float> packed;
    packed.reserve(static_cast<size_t>(out_w + out_h) * kBicubicTapFloats);
    for (const auto& [in_size, out_size] : {std::pair{in_w, out_w}, std::pair{in_h, out_h}}) {
      const ops::CubicTaps taps = ops::BicubicTaps(in_size, out_size);
      for (int d = 0; d < out_size; ++d) {
        packed.push_back(static_cast<float>(taps.first[d]));  // a small integer: exact in fp32
        for (int k = 0; k < 4; ++k) packed.push_back(taps.weights[static_cast<size_t>(d) * 4 + k]);
      }
    }
    Result<gpu::DeviceBlock> block = backend_.Upload(packed);
    if (!block.ok()) return block.status();
    if (taps_.size() >= kKeptSizes) taps_.erase(taps_.begin());
    auto held = std::make_shared<gpu::DeviceBlock>(std::move(block).value());
    taps_.emplace(key, held);
    return held;
  }

  const VulkanBackend& backend_;
  const ncnn::LayerSpec& layer_;
  mutable std::mutex mutex_;
  mutable std::map<std::array<int, 4>, std::shared_ptr<gpu::DeviceBlock>> taps_;
};

}  // namespace

std::unique_ptr<Op> MakeSqueezeExcitationOp(const VulkanBackend& backend, const ncnn::LayerSpec& layer,
                                            const ncnn::LayerWeights& weights) {
  switch (layer.kind) {
    case ncnn::LayerKind::kScale: return std::make_unique<VulkanScale>(backend, layer, weights);
    case ncnn::LayerKind::kPooling:
      // Global average pooling is the only kind the models (and the reference kernels) have.
      if (layer.params.GetInt(0, 0) != 1 || layer.params.GetInt(4, 0) != 1) return nullptr;
      return std::make_unique<VulkanGlobalPool>(backend, layer);
    case ncnn::LayerKind::kInnerProduct: {
      const ncnn::InnerProductParams ip = ncnn::InnerProductParams::Read(layer.params);
      if (ip.num_output <= 0 || ip.activation_type < 0 || ip.activation_type > 4) return nullptr;
      return std::make_unique<VulkanInnerProduct>(backend, layer, weights);
    }
    default: return nullptr;
  }
}

std::unique_ptr<Op> MakeBicubicInterpOp(const VulkanBackend& backend, const ncnn::LayerSpec& layer) {
  if (ncnn::InterpParams::Read(layer.params).resize_type != ncnn::InterpParams::kBicubic) return nullptr;
  return std::make_unique<VulkanBicubic>(backend, layer);
}

}  // namespace tessera::engine::vulkan
