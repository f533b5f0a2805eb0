// Reference PReLU, Eltwise, BinaryOp and Scale.
#include <algorithm>

#include "engine/ncnn/layer_params.h"
#include "engine/ops/reference_ops.h"

namespace tessera::engine::ops {
namespace {

bool SameShape(const Tensor& a, const Tensor& b) {
  return a.dims == b.dims && a.c == b.c && a.h == b.h && a.w == b.w && a.layout == b.layout;
}

float Apply(int op, float a, float b) {
  switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
  }
  return a;
}

}  // namespace

Status PReluInPlace(Tensor* t, const ncnn::LayerWeights& w) {
  const bool shared = w.weight.size() == 1;
  if (t->dims != 3) {
    if (!shared && w.weight.size() != t->size()) return InvalidError("PReLU slopes do not match the input");
    for (size_t i = 0; i < t->size(); ++i) {
      if (t->data[i] < 0) t->data[i] *= shared ? w.weight[0] : w.weight[i];
    }
    return Status::Ok();
  }
  if (!shared && static_cast<int>(w.weight.size()) != t->c) return InvalidError("PReLU slopes do not match the channels");
  if (t->layout != Layout::kPlain) return InvalidError("the reference PReLU reads plain tensors only");
  // Channels are independent: split them over the cores (memory-bound work).
#pragma omp parallel for schedule(static)
  for (int q = 0; q < t->c; ++q) {
    float* d = t->channel(q);
    const float slope = shared ? w.weight[0] : w.weight[q];
    const size_t n = t->plane();
    for (size_t i = 0; i < n; ++i) d[i] = d[i] < 0 ? d[i] * slope : d[i];
  }
  return Status::Ok();
}

Result<Tensor> PRelu(const Tensor& in, const ncnn::LayerWeights& w) {
  Tensor out = in;
  Status s = PReluInPlace(&out, w);
  if (!s.ok()) return s;
  return out;
}

Result<Tensor> Eltwise(const std::vector<const Tensor*>& in, const ncnn::ParamDict& p) {
  const ncnn::EltwiseParams params = ncnn::EltwiseParams::Read(p);
  const int op = params.op;
  const std::vector<float>& coeffs = params.coeffs;
  for (const Tensor* t : in) {
    if (!SameShape(*t, *in[0])) return InvalidError("Eltwise inputs differ in shape");
  }
  if (!coeffs.empty() && coeffs.size() != in.size()) return InvalidError("Eltwise coefficients do not match inputs");
  Tensor out = *in[0];
  const size_t n = out.size();
  if (op == 1) {
    std::vector<double> acc(n, 0.0);
    for (size_t k = 0; k < in.size(); ++k) {
      const double c = coeffs.empty() ? 1.0 : coeffs[k];
      for (size_t i = 0; i < n; ++i) acc[i] += c * in[k]->data[i];
    }
    for (size_t i = 0; i < n; ++i) out.data[i] = static_cast<float>(acc[i]);
  } else {
    for (size_t k = 1; k < in.size(); ++k) {
      for (size_t i = 0; i < n; ++i) {
        out.data[i] = op == 0 ? out.data[i] * in[k]->data[i] : std::max(out.data[i], in[k]->data[i]);
      }
    }
  }
  return out;
}

Result<Tensor> BinaryOp(const std::vector<const Tensor*>& in, const ncnn::ParamDict& p) {
  const ncnn::BinaryOpParams params = ncnn::BinaryOpParams::Read(p);
  const int op = params.op;
  if (params.with_scalar || in.size() == 1) {
    Tensor out = *in[0];
    const float b = params.scalar;
    for (float& v : out.data) v = Apply(op, v, b);
    return out;
  }
  const Tensor& a = *in[0];
  const Tensor& b = *in[1];
  if (SameShape(a, b)) {
    Tensor out = a;
    const size_t n = out.size();
    float* d = out.data.data();
    const float* e = b.data.data();
    switch (op) {  // the common cases as plain loops the compiler vectorises
      case 0: for (size_t i = 0; i < n; ++i) d[i] += e[i]; break;
      case 2: for (size_t i = 0; i < n; ++i) d[i] *= e[i]; break;
      default: for (size_t i = 0; i < n; ++i) d[i] = Apply(op, d[i], e[i]); break;
    }
    return out;
  }
  // A feature map and a per-channel vector, either way round.
  const bool a_map = a.dims == 3 && b.dims == 1 && b.w == a.c;
  const bool b_map = b.dims == 3 && a.dims == 1 && a.w == b.c;
  if (!a_map && !b_map) return InvalidError("BinaryOp operands cannot be broadcast");
  const Tensor& map = a_map ? a : b;
  const Tensor& vec = a_map ? b : a;
  Tensor out = map;
  for (int q = 0; q < map.c; ++q) {
    float* d = out.channel(q);
    const float v = vec.data[q];
    const size_t n = map.plane();
    if (op == 2) {
      for (size_t i = 0; i < n; ++i) d[i] *= v;
    } else if (op == 0) {
      for (size_t i = 0; i < n; ++i) d[i] += v;
    } else {
      for (size_t i = 0; i < n; ++i) d[i] = a_map ? Apply(op, d[i], v) : Apply(op, v, d[i]);
    }
  }
  return out;
}

Result<Tensor> Scale(const std::vector<const Tensor*>& in, const ncnn::ParamDict& p, const ncnn::LayerWeights& w) {
  const Tensor& x = *in[0];
  const float* scale = in.size() == 2 ? in[1]->data.data() : w.weight.data();
  const size_t scale_size = in.size() == 2 ? in[1]->data.size() : w.weight.size();
  const int channels = x.dims == 3 ? x.c : x.w;
  if (static_cast<int>(scale_size) != channels) return InvalidError("Scale size does not match the channels");
  const bool bias = p.GetInt(1, 0) != 0 && !w.bias.empty();
  Tensor out = x;
  for (int q = 0; q < channels; ++q) {
    float* d = x.dims == 3 ? out.channel(q) : out.data.data() + q;
    const size_t n = x.dims == 3 ? x.plane() : 1;
    for (size_t i = 0; i < n; ++i) d[i] = d[i] * scale[q] + (bias ? w.bias[q] : 0.f);
  }
  return out;
}

}  // namespace tessera::engine::ops
