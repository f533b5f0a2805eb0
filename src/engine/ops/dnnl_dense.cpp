#include "engine/ops/dnnl_dense.h"

#include <cstring>
#include <unordered_map>

namespace tessera::engine::ops {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;
}  // namespace

struct DnnlGlobalAveragePool::Compiled {
  dnnl::pooling_forward primitive;
  memory::desc dst;  // {1, c, 1, 1} in the input's layout: its first c values are the vector
};

Result<Tensor> DnnlGlobalAveragePool::Run(const OpInputs& run) const {
  const Tensor& x = *run.tensors[0];
  if (x.dims != 3) return InvalidError("Pooling needs a 3-D input");
  try {
    auto compiled = cache_.Get(ShapeKey({&x}), [&]() -> Result<std::shared_ptr<Compiled>> {
      auto c = std::make_shared<Compiled>();
      c->dst = memory::desc({1, x.c, 1, 1}, dt::f32, TagOf(x.layout));
      // Average pooling with the whole map as its window, not reduction_mean:
      // oneDNN 2.6 reduces a blocked map with its reference kernel (105 ms
      // against pooling's 8 ms on a 64-channel 236x236 map).
      dnnl::pooling_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_avg_exclude_padding,
                                    DescOf(x), c->dst, {1, 1}, {x.h, x.w}, {0, 0}, {0, 0});
      c->primitive = dnnl::pooling_forward(dnnl::pooling_forward::primitive_desc(d, CpuEngine()));
      return c;
    });
    if (!compiled.ok()) return compiled.status();
    Tensor out = Tensor::Vector(static_cast<int>((*compiled)->dst.get_size() / sizeof(float)));
    Execute((*compiled)->primitive,
            {{DNNL_ARG_SRC, MemoryOf(x)}, {DNNL_ARG_DST, memory((*compiled)->dst, CpuEngine(), out.data.data())}});
    out.data.resize(static_cast<size_t>(x.c));  // drops the layout's padding channels
    out.w = x.c;
    return out;
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, layer_.name);
  }
}

struct DnnlInnerProduct::Compiled {
  dnnl::inner_product_forward primitive;
  memory weights;  // in the layout the primitive chose
  memory bias;
};

Result<Tensor> DnnlInnerProduct::Run(const OpInputs& run) const {
  const std::vector<const Tensor*>& inputs = run.tensors;
  const int num_output = layer_.params.GetInt(0, 0);
  try {
    Tensor plain;
    const bool is_plain = inputs[0]->layout == Layout::kPlain;
    if (!is_plain) plain = Relayout(*inputs[0], Layout::kPlain);
    const Tensor& x = is_plain ? *inputs[0] : plain;
    const int64_t n = static_cast<int64_t>(x.size());
    if (num_output <= 0 || weights_.weight.size() != static_cast<size_t>(n) * num_output) {
      return InvalidError("InnerProduct weights do not match an input of " + std::to_string(n));
    }
    const bool has_bias = layer_.params.GetInt(1, 0) != 0;
    if (has_bias && weights_.bias.size() != static_cast<size_t>(num_output)) {
      return InvalidError("InnerProduct bias does not match its outputs");
    }
    auto compiled = cache_.Get({static_cast<int>(n)}, [&]() -> Result<std::shared_ptr<Compiled>> {
      auto c = std::make_shared<Compiled>();
      const memory::desc src({1, n}, dt::f32, tag::nc);
      const memory::desc weights_any({num_output, n}, dt::f32, tag::any);
      const memory::desc bias = has_bias ? memory::desc({num_output}, dt::f32, tag::x) : memory::desc();
      const memory::desc dst({1, num_output}, dt::f32, tag::nc);
      dnnl::post_ops ops;
      dnnl::primitive_attr attr;
      if (ActivationPostOp(layer_.params, &ops)) attr.set_post_ops(ops);
      dnnl::inner_product_forward::desc d(dnnl::prop_kind::forward_inference, src, weights_any, bias, dst);
      dnnl::inner_product_forward::primitive_desc pd(d, attr, CpuEngine());
      c->primitive = dnnl::inner_product_forward(pd);
      // ncnn keeps the weights as [output][input]: oneDNN's oi.
      memory user({{num_output, n}, dt::f32, tag::oi}, CpuEngine(), const_cast<float*>(weights_.weight.data()));
      c->weights = memory(pd.weights_desc(), CpuEngine());
      dnnl::stream stream(CpuEngine());
      dnnl::reorder(user, c->weights).execute(stream, user, c->weights);
      stream.wait();
      if (has_bias) {
        c->bias = memory(bias, CpuEngine());
        std::memcpy(c->bias.get_data_handle(), weights_.bias.data(), weights_.bias.size() * sizeof(float));
      }
      return c;
    });
    if (!compiled.ok()) return compiled.status();
    Tensor out = Tensor::Vector(num_output);
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, memory({{1, n}, dt::f32, tag::nc}, CpuEngine(), const_cast<float*>(x.data.data()))},
        {DNNL_ARG_WEIGHTS, (*compiled)->weights},
        {DNNL_ARG_DST, memory({{1, num_output}, dt::f32, tag::nc}, CpuEngine(), out.data.data())}};
    if (has_bias) args.insert({DNNL_ARG_BIAS, (*compiled)->bias});
    Execute((*compiled)->primitive, args);
    return out;
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, layer_.name);
  }
}

}  // namespace tessera::engine::ops
