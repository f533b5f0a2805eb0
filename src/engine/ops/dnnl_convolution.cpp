#include "engine/ops/dnnl_convolution.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <cmath>
#include <cstring>

#include "engine/ops/conv_window.h"
#include "engine/ops/dnnl_support.h"

namespace tessera::engine::ops {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

}  // namespace

struct DnnlConvolution::Compiled {
  dnnl::primitive primitive;
  memory weights;
  memory bias;
  memory::desc src_desc;  // what the primitive wants
  memory::desc dst_desc;
  int out_c = 0, out_h = 0, out_w = 0;
};

DnnlConvolution::DnnlConvolution(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights)
    : layer_(layer), weights_(weights), transposed_(layer.type == "Deconvolution") {}

DnnlConvolution::~DnnlConvolution() = default;

Result<std::shared_ptr<DnnlConvolution::Compiled>> DnnlConvolution::CompileFor(int channels, int height,
                                                                              int width) const {
  const ConvWindow k = ConvWindow::Read(layer_.params);
  const int ext_w = k.extent_w();
  const int ext_h = k.extent_h();
  auto compiled = std::make_shared<Compiled>();
  compiled->out_c = k.num_output;
  if (transposed_) {
    compiled->out_w = (width - 1) * k.sw + ext_w + k.out_pad_right - k.pad_left - k.pad_right;
    compiled->out_h = (height - 1) * k.sh + ext_h + k.out_pad_bottom - k.pad_top - k.pad_bottom;
  } else {
    compiled->out_w = (width + k.pad_left + k.pad_right - ext_w) / k.sw + 1;
    compiled->out_h = (height + k.pad_top + k.pad_bottom - ext_h) / k.sh + 1;
  }
  if (compiled->out_w <= 0 || compiled->out_h <= 0) return InvalidError("output would be empty");
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
    memory::desc src_md(src_dims, dt::f32, tag::any);
    memory::desc dst_md(dst_dims, dt::f32, tag::any);
    memory::desc w_md(weight_dims, dt::f32, tag::any);
    memory::desc b_md = has_bias ? memory::desc({k.num_output}, dt::f32, tag::x) : memory::desc();

    dnnl::post_ops ops;
    dnnl::primitive_attr attr;
    if (ActivationPostOp(layer_.params, &ops)) attr.set_post_ops(ops);

    memory::desc wanted_weights;
    // Both primitives take the same descriptors; only the kind differs.
    auto create = [&](auto kind, dnnl::algorithm algorithm) {
      using Primitive = decltype(kind);
      typename Primitive::desc d(dnnl::prop_kind::forward_inference, algorithm, src_md, w_md, b_md, dst_md, strides,
                                 dilates, pad_l, pad_r);
      typename Primitive::primitive_desc pd(d, attr, engine);
      compiled->primitive = Primitive(pd);
      compiled->src_desc = pd.src_desc();
      compiled->dst_desc = pd.dst_desc();
      wanted_weights = pd.weights_desc();
    };
    if (transposed_) {
      create(dnnl::deconvolution_forward(), dnnl::algorithm::deconvolution_direct);
    } else {
      create(dnnl::convolution_forward(), dnnl::algorithm::convolution_direct);
    }
    // ncnn keeps both kinds of weights as [out][in][kh][kw]: oneDNN's oihw.
    dnnl::stream stream(engine);
    memory user_weights({weight_dims, dt::f32, tag::oihw}, engine, const_cast<float*>(weights_.weight.data()));
    compiled->weights = memory(wanted_weights, engine);
    dnnl::reorder(user_weights, compiled->weights).execute(stream, user_weights, compiled->weights);
    if (has_bias) {
      compiled->bias = memory(b_md, engine);
      std::memcpy(compiled->bias.get_data_handle(), weights_.bias.data(), weights_.bias.size() * sizeof(float));
    }
    stream.wait();
  } catch (const dnnl::error& e) {
    return InternalError(std::string("oneDNN could not build ") + layer_.type + ": " + e.what());
  }
  return compiled;
}

Result<Tensor> DnnlConvolution::Run(const Tensor& input, bool blocked_output_ok) const {
  if (input.dims != 3) return InvalidError(layer_.type + " needs a 3-D input");
  std::shared_ptr<Compiled> compiled;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& slot = compiled_[{input.h, input.w}];
    if (!slot) {
      Result<std::shared_ptr<Compiled>> made = CompileFor(input.c, input.h, input.w);
      if (!made.ok()) {
        compiled_.erase({input.h, input.w});
        return made.status();
      }
      slot = std::move(made).value();
    }
    compiled = slot;
  }
  try {
    dnnl::engine& engine = CpuEngine();
    dnnl::stream stream(engine);
    memory user_src(DescOf(input), engine, const_cast<float*>(input.data.data()));
    memory src = user_src;
    if (compiled->src_desc != user_src.get_desc()) {
      src = memory(compiled->src_desc, engine);
      dnnl::reorder(user_src, src).execute(stream, user_src, src);
    }
    // Write straight into the output tensor when its layout is the primitive's.
    Tensor out;
    out.c = compiled->out_c;
    out.h = compiled->out_h;
    out.w = compiled->out_w;
    const memory::desc blocked_desc({1, out.c, out.h, out.w}, dt::f32, tag::nChw8c);
    out.block = blocked_output_ok && compiled->dst_desc == blocked_desc ? 8 : 0;
    out.data.resize(DescOf(out).get_size() / sizeof(float));
    memory user_dst(DescOf(out), engine, out.data.data());
    memory dst = compiled->dst_desc == user_dst.get_desc() ? user_dst : memory(compiled->dst_desc, engine);
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, compiled->weights}, {DNNL_ARG_DST, dst}};
    if (compiled->bias) args.insert({DNNL_ARG_BIAS, compiled->bias});
    compiled->primitive.execute(stream, args);
    if (dst != user_dst) dnnl::reorder(dst, user_dst).execute(stream, dst, user_dst);
    stream.wait();
    return out;
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, layer_.name);
  }
}

Result<Tensor> DnnlConvolution::Run(const std::vector<const Tensor*>& inputs, bool blocked_output_ok, Tensor*) const {
  return Run(*inputs[0], blocked_output_ok);
}

}  // namespace tessera::engine::ops
