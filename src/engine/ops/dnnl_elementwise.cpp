#include "engine/ops/dnnl_elementwise.h"

#include <algorithm>
#include <unordered_map>

#include "engine/ops/reference_ops.h"

namespace tessera::engine::ops {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;
using Args = std::unordered_map<int, memory>;

bool SameDims(const Tensor& a, const Tensor& b) { return a.dims == b.dims && a.c == b.c && a.h == b.h && a.w == b.w; }

// The output of an op shaped like `x`: x's own storage when the caller gave it
// up (`writable` is &x then), else a fresh tensor.
Tensor OutputLike(const Tensor& x, Tensor* writable) {
  if (writable != nullptr) return std::move(*writable);
  return AllocateLike(x.dims, x.c, x.h, x.w, x.layout);
}

// `inputs` with every tensor in the layout of `like`; converted copies are kept
// in `storage`.
std::vector<const Tensor*> InLayoutOf(const Tensor& like, const std::vector<const Tensor*>& inputs,
                                      std::vector<Tensor>* storage) {
  storage->reserve(inputs.size());
  std::vector<const Tensor*> out;
  for (const Tensor* t : inputs) {
    if (t->dims == like.dims && t->layout != like.layout) {
      storage->push_back(Relayout(*t, like.layout));
      out.push_back(&storage->back());
    } else {
      out.push_back(t);
    }
  }
  return out;
}

// A per-channel (or single) vector of values as a {1, n, 1, 1} memory over `data`.
memory VectorMemory(const float* data, int n) {
  return memory(memory::desc({1, n, 1, 1}, dt::f32, tag::nchw), CpuEngine(), const_cast<float*>(data));
}

// The descriptor of a per-channel vector broadcast against `map`: in the map's
// layout, because oneDNN 2.6's fast binary kernel takes a per-channel operand
// only in the layout of the other one (a plain vector against a blocked map
// runs its reference kernel, measured 44x slower on a 64-channel 236x236 map).
memory::desc ChannelVectorDesc(const Tensor& map, int n) {
  return memory::desc({1, n, 1, 1}, dt::f32, map.dims == 3 ? TagOf(map.layout) : tag::nchw);
}

// `n` values as a memory of ChannelVectorDesc(map, n): a copy when the layout pads them.
memory ChannelVector(const Tensor& map, const float* data, int n) {
  const memory::desc desc = ChannelVectorDesc(map, n);
  if (desc == VectorMemory(data, n).get_desc()) return VectorMemory(data, n);
  memory m(desc, CpuEngine());
  float* values = static_cast<float*>(m.get_data_handle());
  std::fill_n(values, desc.get_size() / sizeof(float), 0.f);
  std::copy_n(data, n, values);  // {1, n, 1, 1} in any layout: channel q at offset q
  return m;
}

dnnl::algorithm BinaryAlgorithm(int ncnn_op) {
  switch (ncnn_op) {
    case 1: return dnnl::algorithm::binary_sub;
    case 2: return dnnl::algorithm::binary_mul;
    case 3: return dnnl::algorithm::binary_div;
  }
  return dnnl::algorithm::binary_add;
}

dnnl::binary MakeBinary(dnnl::algorithm algorithm, const memory::desc& src0, const memory::desc& src1,
                        const dnnl::primitive_attr& attr = dnnl::primitive_attr()) {
  dnnl::binary::desc d(algorithm, src0, src1, src0);
  return dnnl::binary(dnnl::binary::primitive_desc(d, attr, CpuEngine()));
}
}  // namespace

// ---- PReLU ----

struct DnnlPRelu::Compiled {
  dnnl::prelu_forward primitive;
  memory slopes;  // in the layout the primitive chose
};

Result<Tensor> DnnlPRelu::Run(const OpInputs& run) const {
  const std::vector<const Tensor*>& inputs = run.tensors;
  Tensor* writable = run.writable.empty() ? nullptr : run.writable[0];
  const Tensor& x = *inputs[0];
  const int channels = x.dims == 3 ? x.c : x.w;
  const int slopes = static_cast<int>(weights_.weight.size());
  if (slopes != 1 && slopes != channels) return InvalidError("PReLU slopes do not match the channels");
  try {
    auto compiled = cache_.Get(ShapeKey({&x}), [&]() -> Result<std::shared_ptr<Compiled>> {
      auto c = std::make_shared<Compiled>();
      const memory::desc slopes_any({1, slopes, 1, 1}, dt::f32, tag::any);
      dnnl::prelu_forward::desc d(dnnl::prop_kind::forward_inference, DescOf(x), slopes_any);
      dnnl::prelu_forward::primitive_desc pd(d, CpuEngine());
      c->primitive = dnnl::prelu_forward(pd);
      c->slopes = memory(pd.weights_desc(), CpuEngine());
      memory user = VectorMemory(weights_.weight.data(), slopes);
      dnnl::stream stream(CpuEngine());
      dnnl::reorder(user, c->slopes).execute(stream, user, c->slopes);
      stream.wait();
      return c;
    });
    if (!compiled.ok()) return compiled.status();
    const bool in_place = writable != nullptr;
    memory src = in_place ? memory() : MemoryOf(x);
    Tensor out = OutputLike(x, writable);
    memory dst = MemoryOf(out);
    Execute((*compiled)->primitive,
            {{DNNL_ARG_SRC, in_place ? dst : src}, {DNNL_ARG_WEIGHTS, (*compiled)->slopes}, {DNNL_ARG_DST, dst}});
    return out;
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, layer_.name);
  }
}

// ---- Eltwise ----

struct DnnlEltwise::Compiled {
  dnnl::primitive primitive;  // sum of all inputs, or a binary of two
};

Result<Tensor> DnnlEltwise::Run(const OpInputs& run) const {
  const std::vector<const Tensor*>& inputs = run.tensors;
  Tensor* writable = run.writable.empty() ? nullptr : run.writable[0];
  const int op = params_.op;
  const std::vector<float>& coeffs = params_.coeffs;
  for (const Tensor* t : inputs) {
    if (!SameDims(*t, *inputs[0])) return InvalidError("Eltwise inputs differ in shape");
  }
  if (!coeffs.empty() && coeffs.size() != inputs.size()) return InvalidError("Eltwise coefficients do not match inputs");
  const Tensor& x = *inputs[0];
  try {
    std::vector<Tensor> converted;
    const std::vector<const Tensor*> in = InLayoutOf(x, inputs, &converted);
    const memory::desc desc = DescOf(x);
    auto compiled = cache_.Get(ShapeKey(inputs), [&]() -> Result<std::shared_ptr<Compiled>> {
      auto c = std::make_shared<Compiled>();
      if (op == 1) {
        std::vector<float> scales = coeffs.empty() ? std::vector<float>(in.size(), 1.f) : coeffs;
        dnnl::sum::primitive_desc pd(desc, scales, std::vector<memory::desc>(in.size(), desc), CpuEngine());
        c->primitive = dnnl::sum(pd);
      } else {
        c->primitive = MakeBinary(op == 0 ? dnnl::algorithm::binary_mul : dnnl::algorithm::binary_max, desc, desc);
      }
      return c;
    });
    if (!compiled.ok()) return compiled.status();
    // Every source's memory before input 0's storage may be handed to the output.
    std::vector<memory> sources;
    for (size_t k = 0; k < in.size(); ++k) sources.push_back(k == 0 && writable != nullptr ? memory() : MemoryOf(*in[k]));
    Tensor out = OutputLike(x, writable);
    memory dst = MemoryOf(out);
    if (writable != nullptr) sources[0] = dst;
    if (op == 1) {
      Args args = {{DNNL_ARG_DST, dst}};
      for (size_t k = 0; k < sources.size(); ++k) args.insert({DNNL_ARG_MULTIPLE_SRC + static_cast<int>(k), sources[k]});
      Execute((*compiled)->primitive, args);
    } else {
      memory acc = sources[0];
      for (size_t k = 1; k < sources.size(); ++k) {
        Execute((*compiled)->primitive, {{DNNL_ARG_SRC_0, acc}, {DNNL_ARG_SRC_1, sources[k]}, {DNNL_ARG_DST, dst}});
        acc = dst;
      }
      if (sources.size() == 1 && writable == nullptr) out = x;
    }
    return out;
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, layer_.name);
  }
}

// ---- BinaryOp ----

struct DnnlBinaryOp::Compiled {
  dnnl::binary primitive;
  bool swapped = false;    // the map is input 1: run as map (op) vector
  bool reference = false;  // no oneDNN form (vector ÷ map)
};

Result<Tensor> DnnlBinaryOp::Run(const OpInputs& run) const {
  const std::vector<const Tensor*>& inputs = run.tensors;
  Tensor* writable = run.writable.empty() ? nullptr : run.writable[0];
  const int op = params_.op;
  const bool scalar = params_.with_scalar || inputs.size() == 1;
  const float scalar_value = params_.scalar;
  const Tensor& a = *inputs[0];
  const Tensor* b = scalar ? nullptr : inputs[1];
  // The reference kernel's rules: same shape, or a 3-D map and a 1-D vector
  // with one value per channel, in either order.
  const bool same = b != nullptr && SameDims(a, *b);
  const bool a_map = b != nullptr && a.dims == 3 && b->dims == 1 && b->w == a.c;
  const bool b_map = b != nullptr && b->dims == 3 && a.dims == 1 && a.w == b->c;
  if (!scalar && !same && !a_map && !b_map) return InvalidError("BinaryOp operands cannot be broadcast");
  try {
    std::vector<Tensor> converted;
    const std::vector<const Tensor*> in = scalar ? inputs : InLayoutOf(b_map ? *b : a, inputs, &converted);
    const Tensor& map = b_map ? *in[1] : *in[0];
    auto compiled = cache_.Get(ShapeKey(inputs), [&]() -> Result<std::shared_ptr<Compiled>> {
      auto c = std::make_shared<Compiled>();
      const memory::desc map_desc = DescOf(map);
      if (scalar) {
        c->primitive = MakeBinary(BinaryAlgorithm(op), map_desc, memory::desc({1, 1, 1, 1}, dt::f32, tag::nchw));
      } else if (same) {
        c->primitive = MakeBinary(BinaryAlgorithm(op), map_desc, DescOf(*in[1]));
      } else if (a_map) {
        c->primitive = MakeBinary(BinaryAlgorithm(op), map_desc, ChannelVectorDesc(map, map.c));
      } else if (op == 0 || op == 2) {
        c->swapped = true;  // v + m = m + v, v * m = m * v
        c->primitive = MakeBinary(BinaryAlgorithm(op), map_desc, ChannelVectorDesc(map, map.c));
      } else if (op == 1) {
        c->swapped = true;  // v - m = -(m - v): negation is exact
        dnnl::post_ops negate;
        negate.append_eltwise(1.f, dnnl::algorithm::eltwise_linear, -1.f, 0.f);
        dnnl::primitive_attr attr;
        attr.set_post_ops(negate);
        c->primitive = MakeBinary(dnnl::algorithm::binary_sub, map_desc, ChannelVectorDesc(map, map.c), attr);
      } else {
        c->reference = true;
      }
      return c;
    });
    if (!compiled.ok()) return compiled.status();
    if ((*compiled)->reference) {
      const Tensor plain_map = map.layout == Layout::kPlain ? map : Relayout(map, Layout::kPlain);
      return BinaryOp({in[0], &plain_map}, layer_.params);
    }
    float value = scalar_value;
    const Tensor* second = scalar ? nullptr : (*compiled)->swapped ? in[0] : in[1];
    memory src1 = scalar ? VectorMemory(&value, 1)
                  : same ? MemoryOf(*second)
                         : ChannelVector(map, second->data.data(), map.c);
    // In place only when the output takes input 0's place (not when swapped).
    const bool in_place = writable != nullptr && !(*compiled)->swapped && in[0] == inputs[0];
    memory src0 = in_place ? memory() : MemoryOf(map);
    Tensor out = in_place ? OutputLike(map, writable) : AllocateLike(map.dims, map.c, map.h, map.w, map.layout);
    memory dst = MemoryOf(out);
    Execute((*compiled)->primitive, {{DNNL_ARG_SRC_0, in_place ? dst : src0}, {DNNL_ARG_SRC_1, src1}, {DNNL_ARG_DST, dst}});
    return out;
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, layer_.name);
  }
}

// ---- Scale ----

struct DnnlScale::Compiled {
  dnnl::binary primitive;  // x * scale, + bias as a post-op
};

Result<Tensor> DnnlScale::Run(const OpInputs& run) const {
  const std::vector<const Tensor*>& inputs = run.tensors;
  Tensor* writable = run.writable.empty() ? nullptr : run.writable[0];
  const Tensor& x = *inputs[0];
  const int channels = x.dims == 3 ? x.c : x.w;
  const bool from_input = inputs.size() == 2;
  if (from_input && inputs[1]->layout != Layout::kPlain) return InvalidError("Scale factors must be a plain tensor");
  const float* scale = from_input ? inputs[1]->data.data() : weights_.weight.data();
  const size_t scale_size = from_input ? inputs[1]->data.size() : weights_.weight.size();
  if (static_cast<int>(scale_size) != channels) return InvalidError("Scale size does not match the channels");
  const bool bias = layer_.params.GetInt(1, 0) != 0 && !weights_.bias.empty();
  if (bias && static_cast<int>(weights_.bias.size()) != channels) return InvalidError("Scale bias does not match the channels");
  try {
    const memory::desc vector_desc = ChannelVectorDesc(x, channels);
    auto compiled = cache_.Get(ShapeKey({&x}), [&]() -> Result<std::shared_ptr<Compiled>> {
      auto c = std::make_shared<Compiled>();
      dnnl::primitive_attr attr;
      if (bias) {
        dnnl::post_ops add_bias;
        add_bias.append_binary(dnnl::algorithm::binary_add, vector_desc);
        attr.set_post_ops(add_bias);
      }
      c->primitive = MakeBinary(dnnl::algorithm::binary_mul, DescOf(x), vector_desc, attr);
      return c;
    });
    if (!compiled.ok()) return compiled.status();
    // Not in place with the bias post-op: oneDNN 2.6's jit binary then gets the
    // channels of a blocked map's last, partial group of 8 wrong (measured: off
    // by up to 1205 on 13 channels; right out of place, and in place without it).
    const bool in_place = writable != nullptr && !bias;
    memory src0 = in_place ? memory() : MemoryOf(x);
    memory factors = ChannelVector(x, scale, channels);  // before x may move: scale is not x
    Tensor out = OutputLike(x, in_place ? writable : nullptr);
    memory dst = MemoryOf(out);
    Args args = {{DNNL_ARG_SRC_0, in_place ? dst : src0}, {DNNL_ARG_SRC_1, factors}, {DNNL_ARG_DST, dst}};
    if (bias) {
      args.insert({DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, ChannelVector(x, weights_.bias.data(), channels)});
    }
    Execute((*compiled)->primitive, args);
    return out;
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, layer_.name);
  }
}

}  // namespace tessera::engine::ops
