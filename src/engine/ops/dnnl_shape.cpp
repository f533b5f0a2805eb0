#include "engine/ops/dnnl_shape.h"

#include <unordered_map>

#include "engine/ops/reference_ops.h"

namespace tessera::engine::ops {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;
using Args = std::unordered_map<int, memory>;
}  // namespace

// ---- Concat ----

struct DnnlConcat::Compiled {
  std::vector<dnnl::reorder> copies;  // input i into its channels of the output
  std::vector<memory::desc> views;    // those channels, inside the whole output
  Tensor shape;                       // the output's shape and layout, no data
};

Result<Tensor> DnnlConcat::Run(const OpInputs& run) const {
  const std::vector<const Tensor*>& inputs = run.tensors;
  if (inputs.empty()) return InvalidError("Concat without inputs");
  const Tensor& first = *inputs[0];
  // Views into the output at channel offsets need whole blocks.
  bool same_layout = true;
  int channels = 0;
  for (const Tensor* t : inputs) {
    if (t->dims != first.dims) return InvalidError("Concat mixes 1-D and 3-D inputs");
    if (first.dims == 3 && (t->h != first.h || t->w != first.w)) return InvalidError("Concat inputs differ in size");
    same_layout = same_layout && t->layout == first.layout && t->c % ChannelBlock(t->layout) == 0;
    channels += first.dims == 3 ? t->c : t->w;
  }
  try {
    auto compiled = cache_.Get(ShapeKey(inputs), [&]() -> Result<std::shared_ptr<Compiled>> {
      auto c = std::make_shared<Compiled>();
      c->shape.dims = first.dims;
      c->shape.c = first.dims == 3 ? channels : 1;
      c->shape.h = first.h;
      c->shape.w = first.dims == 3 ? first.w : channels;
      c->shape.layout = first.dims == 3 && same_layout ? first.layout : Layout::kPlain;
      // One reorder per input into a view of the output, not oneDNN's concat
      // primitive: its simple implementation took 1.9 ms for what the reorders
      // do in 0.12 ms (64 + 3 x 32 blocked channels, 84 x 84).
      const memory::desc whole = DescOf(c->shape);
      int offset = 0;
      for (const Tensor* t : inputs) {
        const memory::desc src = DescOf(*t);
        const memory::dims dims = src.dims();
        c->views.push_back(whole.submemory_desc(dims, {0, offset, 0, 0}));
        c->copies.emplace_back(dnnl::reorder::primitive_desc(CpuEngine(), src, CpuEngine(), c->views.back()));
        offset += static_cast<int>(dims[1]);
      }
      return c;
    });
    if (!compiled.ok()) return compiled.status();
    const Compiled& c = **compiled;
    Tensor out = AllocateLike(c.shape.dims, c.shape.c, c.shape.h, c.shape.w, c.shape.layout);
    dnnl::stream stream(CpuEngine());
    for (size_t i = 0; i < inputs.size(); ++i) {
      memory src = MemoryOf(*inputs[i]);
      memory dst(c.views[i], CpuEngine(), out.data.data());
      c.copies[i].execute(stream, src, dst);
    }
    stream.wait();
    return out;
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, layer_.name);
  }
}

// ---- Crop ----

struct DnnlCrop::Compiled {
  dnnl::reorder primitive;
  bool plain_first = false;  // the view cannot be taken of the blocked input (channel offset not a whole block)
  memory::desc view;  // the kept region inside the whole input
  CropBox box;
  Layout layout = Layout::kPlain;  // the output's
};

Result<Tensor> DnnlCrop::Run(const OpInputs& run) const {
  const std::vector<const Tensor*>& inputs = run.tensors;
  Result<CropBox> region = CropRegion(inputs, layer_.params);
  if (!region.ok()) return region.status();
  const Tensor& x = *inputs[0];
  try {
    const Layout out_layout = run.output_readers.Has(x.layout) ? x.layout : Layout::kPlain;
    std::vector<int> key = ShapeKey(inputs);
    key.push_back(static_cast<int>(out_layout));
    auto compiled = cache_.Get(key, [&]() -> Result<std::shared_ptr<Compiled>> {
      auto c = std::make_shared<Compiled>();
      const CropBox& b = *region;
      c->box = b;
      c->layout = out_layout;
      const memory::dims dims = {1, b.c, b.h, b.w};
      const memory::dims offsets = {0, b.c0, b.y0, b.x0};
      c->view = DescOf(x).submemory_desc(dims, offsets, /*allow_empty=*/true);
      if (!c->view) {
        c->plain_first = true;
        c->view = memory::desc({1, x.c, x.h, x.w}, dt::f32, tag::nchw).submemory_desc(dims, offsets);
      }
      const memory::desc out_desc(dims, dt::f32, TagOf(c->layout));
      c->primitive = dnnl::reorder(dnnl::reorder::primitive_desc(CpuEngine(), c->view, CpuEngine(), out_desc));
      return c;
    });
    if (!compiled.ok()) return compiled.status();
    const Compiled& c = **compiled;
    Tensor plain;
    if (c.plain_first) plain = Relayout(x, Layout::kPlain);
    const Tensor& source = c.plain_first ? plain : x;
    Tensor out = AllocateLike(3, c.box.c, c.box.h, c.box.w, c.layout);
    // The view's offsets are in its descriptor: the memory is the whole input.
    memory src(c.view, CpuEngine(), const_cast<float*>(source.data.data()));
    Execute(c.primitive, {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, MemoryOf(out)}});
    return out;
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, layer_.name);
  }
}

// ---- Interp ----

struct DnnlInterp::Compiled {
  dnnl::resampling_forward primitive;
  bool reference = false;  // nearest with a scale where ncnn's and oneDNN's indices differ
};

namespace {

// Whether ncnn's nearest indices along one axis are oneDNN's: an integer
// factor k, where oneDNN's round((d + 0.5) / k - 0.5) is d / k, and ncnn's
// truncated d * (1 / scale) is too.
bool NearestAgrees(int in_size, int out_size, const ncnn::ParamDict& p, bool vertical) {
  if (out_size % in_size != 0) return false;
  const int k = out_size / in_size;
  const std::vector<int> ncnn = NearestIndices(in_size, out_size, p, vertical);
  for (int d = 0; d < out_size; ++d) {
    if (ncnn[d] != d / k) return false;
  }
  return true;
}

}  // namespace

Result<Tensor> DnnlInterp::Run(const OpInputs& run) const {
  const std::vector<const Tensor*>& inputs = run.tensors;
  Tensor* writable = run.writable.empty() ? nullptr : run.writable[0];
  const Tensor& x = *inputs[0];
  if (x.dims != 3) return InvalidError("Interp needs a 3-D input");
  Result<InterpSize> size = InterpOutputSize(x, layer_.params);
  if (!size.ok()) return size.status();
  if (size->h == x.h && size->w == x.w) return writable != nullptr ? std::move(*writable) : x;
  const bool nearest = params_.resize_type == ncnn::InterpParams::kNearest;
  try {
    auto compiled = cache_.Get(ShapeKey({&x}), [&]() -> Result<std::shared_ptr<Compiled>> {
      auto c = std::make_shared<Compiled>();
      if (nearest && !(NearestAgrees(x.h, size->h, layer_.params, true) &&
                       NearestAgrees(x.w, size->w, layer_.params, false))) {
        c->reference = true;
        return c;
      }
      const memory::desc dst({1, x.c, size->h, size->w}, dt::f32, TagOf(x.layout));
      dnnl::resampling_forward::desc d(dnnl::prop_kind::forward_inference,
                                       nearest ? dnnl::algorithm::resampling_nearest : dnnl::algorithm::resampling_linear,
                                       DescOf(x), dst);
      c->primitive = dnnl::resampling_forward(dnnl::resampling_forward::primitive_desc(d, CpuEngine()));
      return c;
    });
    if (!compiled.ok()) return compiled.status();
    if ((*compiled)->reference) return Interp(x.layout == Layout::kPlain ? x : Relayout(x, Layout::kPlain), layer_.params);
    Tensor out = AllocateLike(3, x.c, size->h, size->w, x.layout);
    Execute((*compiled)->primitive, {{DNNL_ARG_SRC, MemoryOf(x)}, {DNNL_ARG_DST, MemoryOf(out)}});
    return out;
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, layer_.name);
  }
}

// ---- PixelShuffle ----

struct DnnlPixelShuffle::Compiled {
  dnnl::reorder primitive;
  memory::desc src;  // the input as (C, r, r, H, W), in its own strides
  memory::desc dst;  // the output as (C, r, r, H, W) with the strides of (C, H, r, W, r)
};

Result<Tensor> DnnlPixelShuffle::Run(const OpInputs& run) const {
  const std::vector<const Tensor*>& inputs = run.tensors;
  const Tensor& x = *inputs[0];
  const int r = layer_.params.GetInt(0, 1);
  if (x.dims != 3 || r <= 0 || x.c % (r * r) != 0) return InvalidError("PixelShuffle channels not divisible by r*r");
  const int64_t oc = x.c / (r * r), h = x.h, w = x.w;
  try {
    auto compiled = cache_.Get(ShapeKey({&x}), [&]() -> Result<std::shared_ptr<Compiled>> {
      auto c = std::make_shared<Compiled>();
      const memory::dims dims = {oc, r, r, h, w};
      // in(k, y, x) with k = q * r * r + sy * r + sx: plain strides, or
      // channels-last ones (a channel's values are x.c apart, a row w * x.c).
      c->src = x.layout == Layout::kChannelsLast
                   ? memory::desc(dims, dt::f32, memory::dims{r * r, r, 1, w * x.c, x.c})
                   : memory::desc(dims, dt::f32, tag::abcde);
      // out(q, y * r + sy, x * r + sx) = in(q * r * r + sy * r + sx, y, x)
      c->dst = memory::desc(dims, dt::f32, memory::dims{h * r * w * r, w * r, 1, r * w * r, r});
      c->primitive = dnnl::reorder(dnnl::reorder::primitive_desc(CpuEngine(), c->src, CpuEngine(), c->dst));
      return c;
    });
    if (!compiled.ok()) return compiled.status();
    const bool readable = ReadsLayout(0, x.layout);
    Tensor plain;
    if (!readable) plain = Relayout(x, Layout::kPlain);
    const Tensor& source = readable ? x : plain;
    Tensor out = AllocateLike(3, static_cast<int>(oc), x.h * r, x.w * r, Layout::kPlain);
    memory src((*compiled)->src, CpuEngine(), const_cast<float*>(source.data.data()));
    memory dst((*compiled)->dst, CpuEngine(), out.data.data());
    Execute((*compiled)->primitive, {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}});
    return out;
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, layer_.name);
  }
}

}  // namespace tessera::engine::ops
