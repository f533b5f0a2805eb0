#include "engine/ops/dnnl_support.h"

#include <cmath>

namespace tessera::engine::ops {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& CpuEngine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

tag TagOf(Layout layout) {
  switch (layout) {
    case Layout::kChannelsLast: return tag::nhwc;
    case Layout::kBlocked8: return tag::nChw8c;
    case Layout::kBlocked16: return tag::nChw16c;
    case Layout::kPlain: break;
  }
  return tag::nchw;
}

std::optional<Layout> LayoutOfDesc(const memory::desc& desc) {
  const memory::dims dims = desc.dims();
  if (dims.size() != 4 || desc.data_type() != dt::f32) return std::nullopt;
  for (Layout layout : kAllLayouts) {
    if (desc == memory::desc(dims, dt::f32, TagOf(layout))) return layout;
  }
  return std::nullopt;
}

memory::desc DescOf(const Tensor& t) {
  if (t.dims == 1) return memory::desc({1, t.w, 1, 1}, dt::f32, tag::nchw);
  return memory::desc({1, t.c, t.h, t.w}, dt::f32, TagOf(t.layout));
}

memory MemoryOf(const Tensor& t) { return memory(DescOf(t), CpuEngine(), const_cast<float*>(t.data.data())); }

Tensor AllocateLike(int dims, int c, int h, int w, Layout layout) {
  Tensor t;
  t.dims = dims;
  t.c = c;
  t.h = h;
  t.w = w;
  t.layout = dims == 3 ? layout : Layout::kPlain;
  t.data.assign(DescOf(t).get_size() / sizeof(float), 0.f);
  return t;
}

Tensor Relayout(const Tensor& t, Layout layout) {
  Tensor out = AllocateLike(t.dims, t.c, t.h, t.w, layout);
  memory src = MemoryOf(t);
  memory dst = MemoryOf(out);
  dnnl::stream stream(CpuEngine());
  dnnl::reorder(src, dst).execute(stream, src, dst);
  stream.wait();
  return out;
}

void Execute(const dnnl::primitive& primitive, const std::unordered_map<int, dnnl::memory>& args) {
  dnnl::stream stream(CpuEngine());
  primitive.execute(stream, args);
  stream.wait();
}

bool ActivationPostOp(const ncnn::ParamDict& p, dnnl::post_ops* ops) {
  const int type = p.GetInt(9, 0);
  const std::vector<float> params = p.GetFloats(10);
  switch (type) {
    case 1: ops->append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f); return true;
    case 2: ops->append_eltwise(1.f, dnnl::algorithm::eltwise_relu, params.empty() ? 0.f : params[0], 0.f); return true;
    case 3:
      ops->append_eltwise(1.f, dnnl::algorithm::eltwise_clip, params.size() > 0 ? params[0] : -INFINITY,
                          params.size() > 1 ? params[1] : INFINITY);
      return true;
    case 4: ops->append_eltwise(1.f, dnnl::algorithm::eltwise_logistic, 0.f, 0.f); return true;
  }
  return false;
}

Status FromDnnlError(const dnnl::error& e, const std::string& what) {
  if (e.status == dnnl_out_of_memory) return Status(StatusCode::kOutOfMemory, what + ": oneDNN out of memory");
  return InternalError(what + ": oneDNN failed: " + e.what());
}

std::vector<int> ShapeKey(const std::vector<const Tensor*>& inputs) {
  std::vector<int> key;
  key.reserve(inputs.size() * 5);
  for (const Tensor* t : inputs) key.insert(key.end(), {t->dims, t->c, t->h, t->w, static_cast<int>(t->layout)});
  return key;
}

}  // namespace tessera::engine::ops
