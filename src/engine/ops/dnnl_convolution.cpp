#include "engine/ops/dnnl_convolution.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <cstring>

#include "engine/ops/conv_window.h"

namespace tessera::engine::ops {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

// Eltwise sum of exactly two inputs, or BinaryOp add of two maps: the residual
// sums a convolution can absorb as a sum post-op. Sets the coefficients of the
// input at `slot` (the convolution's) and of the other one.
bool ResidualSum(const ncnn::LayerSpec& next, int slot, float* own_scale, float* other_scale) {
  if (next.bottoms.size() != 2 || slot < 0 || slot > 1) return false;
  if (next.kind == ncnn::LayerKind::kEltwise) {
    if (next.params.GetInt(0, 1) != 1) return false;
    const std::vector<float> coeffs = next.params.GetFloats(1);
    if (!coeffs.empty() && coeffs.size() != 2) return false;
    *own_scale = coeffs.empty() ? 1.f : coeffs[slot];
    *other_scale = coeffs.empty() ? 1.f : coeffs[1 - slot];
    return true;
  }
  if (next.kind == ncnn::LayerKind::kBinaryOp) {
    if (next.params.GetInt(0, 0) != 0 || next.params.GetInt(1, 0) != 0) return false;  // add of two blobs
    *own_scale = 1.f;
    *other_scale = 1.f;
    return true;
  }
  return false;
}

}  // namespace

// One post-op of a convolution's chain, in order: its built-in activation,
// then what was fused into it.
struct DnnlConvolution::PostStep {
  enum class Kind { kEltwise, kPRelu, kSum } kind = Kind::kEltwise;
  dnnl::algorithm algorithm = dnnl::algorithm::eltwise_relu;  // kEltwise
  float alpha = 0.f, beta = 0.f;                              // kEltwise
  const ncnn::LayerWeights* slopes = nullptr;                 // kPRelu
  float scale = 1.f;                                          // kSum: the other input's coefficient
};

namespace {

using PostStep = DnnlConvolution::PostStep;

bool IsScale(const PostStep& step) {
  return step.kind == PostStep::Kind::kEltwise && step.algorithm == dnnl::algorithm::eltwise_linear &&
         step.beta == 0.f;
}

// The per-channel (or single) slopes of a PReLU as oneDNN takes them: {1, C, 1, 1}.
memory SlopesMemory(const ncnn::LayerWeights& slopes, const memory::desc& desc, dnnl::engine& engine) {
  const int n = static_cast<int>(slopes.weight.size());
  memory user(memory::desc({1, n, 1, 1}, dt::f32, tag::nchw), engine, const_cast<float*>(slopes.weight.data()));
  memory m(desc ? desc : user.get_desc(), engine);
  dnnl::stream stream(engine);
  dnnl::reorder(user, m).execute(stream, user, m);
  stream.wait();
  return m;
}

}  // namespace

struct DnnlConvolution::Compiled {
  dnnl::primitive primitive;
  memory weights;
  memory bias;
  std::vector<memory> prelu_slopes;  // per PReLU post-op, with its post-op index
  std::vector<int> prelu_post_op_index;
  // The chain's steps the primitive does not take, run in place on its output
  // after it (see the header).
  struct TailPass {
    dnnl::primitive primitive;
    memory slopes;  // PReLU only
  };
  std::vector<TailPass> tail;
  float weight_scale = 1.f;  // a scale before the sum, folded into the weights and bias
  std::string impl;       // oneDNN's implementation name, e.g. "brgconv:avx512_core"
  memory::desc src_desc;  // what the primitive reads and writes
  memory::desc dst_desc;
  std::optional<Layout> dst_layout;  // the output's as one of our layouts, when it is one
  int out_c = 0, out_h = 0, out_w = 0;
};

DnnlConvolution::DnnlConvolution(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights,
                                 DnnlConvOptions options)
    : layer_(layer), weights_(weights), options_(options), transposed_(layer.kind == ncnn::LayerKind::kDeconvolution) {}

DnnlConvolution::~DnnlConvolution() = default;

bool DnnlConvolution::Fuse(const ncnn::LayerSpec& next, const ncnn::LayerWeights& next_weights, int slot,
                           Fusion* fusion) {
  if (!options_.fuse || transposed_) return false;
  const ConvWindow k = ConvWindow::Read(layer_.params);
  FusedLayer fused;
  if (next.kind == ncnn::LayerKind::kPRelu) {
    const size_t slopes = next_weights.weight.size();
    if (slopes != 1 && slopes != static_cast<size_t>(k.num_output)) return false;
    fused.kind = FusedLayer::Kind::kPRelu;
    fused.slopes = &next_weights;
  } else if (ResidualSum(next, slot, &fused.own_scale, &fused.other_scale)) {
    // One sum per primitive: its destination holds the other input beforehand.
    for (const FusedLayer& f : fused_) {
      if (f.kind == FusedLayer::Kind::kSum) return false;
    }
    fused.kind = FusedLayer::Kind::kSum;
    fusion->extra_bottoms.push_back(next.bottoms[1 - slot]);
  } else {
    return false;
  }
  // Check, on a map of the layer's channels, that oneDNN builds this chain of
  // post-ops with as fast a kernel as without it: some of its kernels lack a
  // post-op (2.6's brgconv on AVX-512 has no PReLU) and it would fall back to
  // its reference convolution, far slower than a separate pass.
  const int channels = k.num_output > 0 && k.kw > 0 && k.kh > 0
                           ? static_cast<int>(weights_.weight.size() / (static_cast<size_t>(k.num_output) * k.kw * k.kh))
                           : 0;
  Tensor probe;
  probe.c = channels;
  probe.h = probe.w = std::max(32, std::max(k.extent_h(), k.extent_w()) + 1);
  Result<std::shared_ptr<Compiled>> unfused =
      channels > 0 ? Compile(probe, true) : Result<std::shared_ptr<Compiled>>(InvalidError("no channels"));
  fused_.push_back(fused);
  Result<std::shared_ptr<Compiled>> with = unfused.ok() ? Compile(probe, true) : unfused.status();
  const auto is_reference = [](const std::string& impl) { return impl.rfind("ref", 0) == 0; };
  const bool slower = with.ok() && is_reference((*with)->impl) && !is_reference((*unfused)->impl);
  if (!with.ok() || (slower && !options_.fuse_on_any_kernel)) {
    fused_.pop_back();
    if (fused.kind == FusedLayer::Kind::kSum) fusion->extra_bottoms.pop_back();
    return false;
  }
  return true;
}

Result<std::shared_ptr<DnnlConvolution::Compiled>> DnnlConvolution::Compile(const Tensor& input,
                                                                            bool probe_only) const {
  const ConvWindow k = ConvWindow::Read(layer_.params);
  const int channels = input.c, height = input.h, width = input.w;
  auto compiled = std::make_shared<Compiled>();
  compiled->out_c = k.num_output;
  compiled->out_w = k.OutW(width, transposed_);
  compiled->out_h = k.OutH(height, transposed_);
  if (compiled->out_w <= 0 || compiled->out_h <= 0) {
    return InvalidError("output would be empty (an input smaller than its kernel, or cropped away)");
  }
  if (weights_.weight.size() != static_cast<size_t>(k.num_output) * channels * k.kw * k.kh) {
    return InvalidError("weights do not match " + std::to_string(channels) + " input channels");
  }
  try {
    dnnl::engine& engine = CpuEngine();
    const memory::dims src_dims = {1, channels, height, width};
    const memory::dims dst_dims = {1, k.num_output, compiled->out_h, compiled->out_w};
    const memory::dims weight_dims = {k.num_output, channels, k.kh, k.kw};
    const memory::dims strides = {k.sh, k.sw};
    const memory::dims dilates = {k.dh - 1, k.dw - 1};
    const memory::dims pad_l = {k.pad_top, k.pad_left};
    // A deconvolution's output padding extends the far side: less cropping there.
    const memory::dims pad_r = {k.pad_bottom - (transposed_ ? k.out_pad_bottom : 0),
                                k.pad_right - (transposed_ ? k.out_pad_right : 0)};
    const bool has_bias = !weights_.bias.empty();
    const tag activation_tag = options_.layout ? TagOf(*options_.layout) : tag::any;
    const memory::desc src_md(src_dims, dt::f32, activation_tag);
    const memory::desc dst_md(dst_dims, dt::f32, activation_tag);
    const memory::desc w_md(weight_dims, dt::f32, tag::any);
    const memory::desc b_md = has_bias ? memory::desc({k.num_output}, dt::f32, tag::x) : memory::desc();

    // The chain: the layer's own activation, then the fused layers in order.
    std::vector<PostStep> steps;
    {
      dnnl::post_ops activation;
      if (ActivationPostOp(layer_.params, &activation)) {
        PostStep step;
        float scale = 1.f;
        activation.get_params_eltwise(0, scale, step.algorithm, step.alpha, step.beta);
        steps.push_back(step);
      }
    }
    for (const FusedLayer& f : fused_) {
      if (f.kind == FusedLayer::Kind::kPRelu) {
        PostStep step;
        step.kind = PostStep::Kind::kPRelu;
        step.slopes = f.slopes;
        steps.push_back(step);
      } else {
        if (f.own_scale != 1.f) {
          PostStep scale;
          scale.algorithm = dnnl::algorithm::eltwise_linear;
          scale.alpha = f.own_scale;
          steps.push_back(scale);
        }
        PostStep sum;
        sum.kind = PostStep::Kind::kSum;
        sum.scale = f.other_scale;
        steps.push_back(sum);
      }
    }
    // The steps after the last sum are the ones that may run as a tail.
    size_t last_sum = 0;
    for (size_t i = 0; i < steps.size(); ++i) {
      if (steps[i].kind == PostStep::Kind::kSum) last_sum = i + 1;
    }
    auto attr_of = [&](const std::vector<PostStep>& chain, size_t count) {
      dnnl::post_ops ops;
      for (size_t i = 0; i < count; ++i) {
        const PostStep& step = chain[i];
        if (step.kind == PostStep::Kind::kEltwise) ops.append_eltwise(1.f, step.algorithm, step.alpha, step.beta);
        if (step.kind == PostStep::Kind::kPRelu) ops.append_prelu(step.slopes->weight.size() != 1 ? 1 << 1 : 0);
        if (step.kind == PostStep::Kind::kSum) ops.append_sum(step.scale);
      }
      dnnl::primitive_attr attr;
      if (ops.len() > 0) attr.set_post_ops(ops);
      return attr;
    };

    // Winograd's weights are transformed once per input shape, which costs
    // about what one run at 64x64 saves (measured on an AMD EPYC: 1.35 ms per
    // dense-block convolution, against 1.1 -> 0.6 ms per run at 36x36): below
    // that size — a small image, one tile — the direct kernel answers sooner.
    constexpr int kWinogradMinOutputPixels = 64 * 64;
    const bool winograd = options_.winograd && !transposed_ && k.kw == 3 && k.kh == 3 && k.sw == 1 && k.sh == 1 &&
                          k.dw == 1 && k.dh == 1 && compiled->out_h * compiled->out_w >= kWinogradMinOutputPixels;
    memory::desc wanted_weights;
    // Both primitives take the same descriptors; only the kind differs.
    auto create = [&](auto kind, dnnl::algorithm algorithm, const dnnl::primitive_attr& attr) {
      using Primitive = decltype(kind);
      typename Primitive::desc d(dnnl::prop_kind::forward_inference, algorithm, src_md, w_md, b_md, dst_md, strides,
                                 dilates, pad_l, pad_r);
      typename Primitive::primitive_desc pd(d, attr, engine);
      compiled->primitive = Primitive(pd);
      compiled->impl = pd.impl_info_str();
      compiled->src_desc = pd.src_desc();
      compiled->dst_desc = pd.dst_desc();
      wanted_weights = pd.weights_desc();
    };
    // The chain the primitive was built with, and how many of its steps it runs.
    std::vector<PostStep> chain = steps;
    size_t taken = steps.size();
    if (transposed_) {
      create(dnnl::deconvolution_forward(), dnnl::algorithm::deconvolution_direct, attr_of(chain, taken));
    } else {
      // A scale that comes first, before the sum, folded into the weights and
      // bias (Winograd takes no scaled sum).
      std::vector<PostStep> folded = steps;
      float fold = 1.f;
      if (folded.size() >= 2 && IsScale(folded[0]) && folded[1].kind == PostStep::Kind::kSum) {
        fold = folded[0].alpha;
        folded.erase(folded.begin());
      }
      const size_t folded_last_sum = fold != 1.f ? last_sum - 1 : last_sum;
      // The longest prefix of the (folded) chain that oneDNN 2.6's Winograd
      // takes — sums and plain ReLUs — the rest as a tail. Asked once: each
      // refused attempt costs a primitive-descriptor search, and a model has
      // hundreds of convolutions to prepare before its first image.
      size_t winograd_prefix = 0;
      while (winograd_prefix < folded.size()) {
        const PostStep& step = folded[winograd_prefix];
        const bool relu = step.kind == PostStep::Kind::kEltwise && step.algorithm == dnnl::algorithm::eltwise_relu &&
                          step.alpha == 0.f;
        if (step.kind != PostStep::Kind::kSum && !relu) break;
        ++winograd_prefix;
      }
      bool made = false;
      if (winograd && winograd_prefix >= folded_last_sum) {
        try {
          create(dnnl::convolution_forward(), dnnl::algorithm::convolution_winograd, attr_of(folded, winograd_prefix));
          made = true;
          chain = folded;
          taken = winograd_prefix;
          compiled->weight_scale = fold;
        } catch (const dnnl::error&) {
          made = false;  // no Winograd for this shape or ISA: the direct algorithm below
        }
      }
      if (!made && options_.post_ops_after) {
        // Tests: what a Winograd convolution would do, on the direct algorithm.
        chain = folded;
        taken = folded_last_sum;
        compiled->weight_scale = fold;
      }
      if (!made) create(dnnl::convolution_forward(), dnnl::algorithm::convolution_direct, attr_of(chain, taken));
    }
    compiled->dst_layout = LayoutOfDesc(compiled->dst_desc);
    if (probe_only) return compiled;
    // ncnn keeps both kinds of weights as [out][in][kh][kw]: oneDNN's oihw.
    dnnl::stream stream(engine);
    std::vector<float> scaled;
    const float* weight_values = weights_.weight.data();
    if (compiled->weight_scale != 1.f) {
      scaled = weights_.weight;
      for (float& w : scaled) w *= compiled->weight_scale;
      weight_values = scaled.data();
    }
    memory user_weights({weight_dims, dt::f32, tag::oihw}, engine, const_cast<float*>(weight_values));
    compiled->weights = memory(wanted_weights, engine);
    dnnl::reorder(user_weights, compiled->weights).execute(stream, user_weights, compiled->weights);
    stream.wait();
    if (has_bias) {
      compiled->bias = memory(b_md, engine);
      float* bias = static_cast<float*>(compiled->bias.get_data_handle());
      for (size_t i = 0; i < weights_.bias.size(); ++i) bias[i] = weights_.bias[i] * compiled->weight_scale;
    }
    for (size_t i = 0; i < taken; ++i) {
      if (chain[i].kind != PostStep::Kind::kPRelu) continue;
      compiled->prelu_post_op_index.push_back(static_cast<int>(i));
      compiled->prelu_slopes.push_back(SlopesMemory(*chain[i].slopes, {}, engine));
    }
    for (size_t i = taken; i < chain.size(); ++i) {
      const PostStep& step = chain[i];
      Compiled::TailPass pass;
      if (step.kind == PostStep::Kind::kEltwise) {
        dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, step.algorithm, compiled->dst_desc,
                                      step.alpha, step.beta);
        pass.primitive = dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(d, engine));
      } else {
        const int n = static_cast<int>(step.slopes->weight.size());
        const memory::desc slopes_md({1, n == 1 ? 1 : compiled->out_c, 1, 1}, dt::f32, tag::any);
        dnnl::prelu_forward::desc d(dnnl::prop_kind::forward_inference, compiled->dst_desc, slopes_md);
        dnnl::prelu_forward::primitive_desc pd(d, engine);
        pass.primitive = dnnl::prelu_forward(pd);
        pass.slopes = SlopesMemory(*step.slopes, pd.weights_desc(), engine);
      }
      compiled->tail.push_back(std::move(pass));
    }
  } catch (const dnnl::error& e) {
    return InternalError(std::string("oneDNN could not build ") + layer_.type + ": " + e.what());
  }
  return compiled;
}

Result<std::shared_ptr<const DnnlConvolution::Compiled>> DnnlConvolution::CompiledFor(const Tensor& input) const {
  if (input.dims != 3) return InvalidError(layer_.type + " needs a 3-D input");
  return cache_.Get({input.c, input.h, input.w, static_cast<int>(input.layout)}, [&] { return Compile(input); });
}

Result<Tensor> DnnlConvolution::Run(const OpInputs& run) const {
  const Tensor& input = *run.tensors[0];
  auto found = CompiledFor(input);
  if (!found.ok()) return found.status();
  const Compiled& compiled = **found;
  const bool has_sum = run.tensors.size() > 1;
  if (has_sum) {
    const Tensor& other = *run.tensors[1];
    if (other.dims != 3 || other.c != compiled.out_c || other.h != compiled.out_h || other.w != compiled.out_w) {
      return InvalidError("the residual sum's inputs differ in shape");
    }
  }
  try {
    dnnl::engine& engine = CpuEngine();
    dnnl::stream stream(engine);
    memory user_src = MemoryOf(input);
    memory src = user_src;
    if (compiled.src_desc != user_src.get_desc()) {
      src = memory(compiled.src_desc, engine);
      dnnl::reorder(user_src, src).execute(stream, user_src, src);
    }
    // Written straight into the output tensor when its readers take the
    // primitive's layout; else into a scratch memory converted to plain after.
    const bool direct = compiled.dst_layout && run.output_readers.Has(*compiled.dst_layout);
    Tensor out;
    const bool sum_in_place = direct && has_sum && run.writable.size() > 1 && run.writable[1] != nullptr &&
                              run.writable[1]->layout == *compiled.dst_layout;
    if (sum_in_place) {
      out = std::move(*run.writable[1]);  // the residual's own storage: the sum runs in place
    } else {
      out = AllocateLike(3, compiled.out_c, compiled.out_h, compiled.out_w,
                         direct ? *compiled.dst_layout : Layout::kPlain);
    }
    memory user_dst = MemoryOf(out);
    memory dst = direct ? user_dst : memory(compiled.dst_desc, engine);
    if (has_sum && !sum_in_place) {
      memory other = MemoryOf(*run.tensors[1]);
      dnnl::reorder(other, dst).execute(stream, other, dst);
    }
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, compiled.weights}, {DNNL_ARG_DST, dst}};
    if (compiled.bias) args.insert({DNNL_ARG_BIAS, compiled.bias});
    for (size_t i = 0; i < compiled.prelu_slopes.size(); ++i) {
      args.insert({DNNL_ARG_ATTR_MULTIPLE_POST_OP(compiled.prelu_post_op_index[i]) | DNNL_ARG_WEIGHTS,
                   compiled.prelu_slopes[i]});
    }
    compiled.primitive.execute(stream, args);
    for (const Compiled::TailPass& pass : compiled.tail) {
      if (pass.slopes) {
        pass.primitive.execute(stream, {{DNNL_ARG_SRC, dst}, {DNNL_ARG_WEIGHTS, pass.slopes}, {DNNL_ARG_DST, dst}});
      } else {
        pass.primitive.execute(stream, {{DNNL_ARG_SRC, dst}, {DNNL_ARG_DST, dst}});
      }
    }
    if (!direct) dnnl::reorder(dst, user_dst).execute(stream, dst, user_dst);
    stream.wait();
    return out;
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, layer_.name);
  }
}

}  // namespace tessera::engine::ops
