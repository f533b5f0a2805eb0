// Reference Concat, Crop, Interp, PixelShuffle and global average pooling, and
// the per-layer dispatch.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/ncnn/layer_params.h"
#include "engine/ops/reference_ops.h"

namespace tessera::engine::ops {
namespace {

// ncnn's bicubic weights (A = -0.75) for a fractional offset t in [0, 1).
void CubicWeights(float t, float w[4]) {
  const float a = -0.75f;
  const float x0 = t + 1, x1 = t, x2 = 1 - t;
  w[0] = a * x0 * x0 * x0 - 5 * a * x0 * x0 + 8 * a * x0 - 4 * a;
  w[1] = (a + 2) * x1 * x1 * x1 - (a + 3) * x1 * x1 + 1;
  w[2] = (a + 2) * x2 * x2 * x2 - (a + 3) * x2 * x2 + 1;
  w[3] = 1.f - w[0] - w[1] - w[2];
}

int Clamp(int v, int lo, int hi) { return std::min(std::max(v, lo), hi); }

}  // namespace

CubicTaps BicubicTaps(int in_size, int out_size) {
  CubicTaps taps;
  taps.first.resize(out_size);
  taps.weights.resize(static_cast<size_t>(out_size) * 4);
  const double scale = static_cast<double>(in_size) / out_size;
  for (int d = 0; d < out_size; ++d) {
    float f = static_cast<float>((d + 0.5) * scale - 0.5);
    int s = static_cast<int>(std::floor(f));
    f -= static_cast<float>(s);
    taps.first[d] = s - 1;
    CubicWeights(f, &taps.weights[static_cast<size_t>(d) * 4]);
  }
  return taps;
}

Result<Tensor> Concat(const std::vector<const Tensor*>& in, const ncnn::ParamDict&) {
  const Tensor& first = *in[0];
  if (first.dims == 1) {
    Tensor out = Tensor::Vector(0);
    for (const Tensor* t : in) {
      if (t->dims != 1) return InvalidError("Concat mixes 1-D and 3-D inputs");
      out.data.insert(out.data.end(), t->data.begin(), t->data.end());
    }
    out.w = static_cast<int>(out.data.size());
    return out;
  }
  int channels = 0;
  for (const Tensor* t : in) {
    if (t->dims != 3 || t->h != first.h || t->w != first.w) return InvalidError("Concat inputs differ in size");
    channels += t->c;
  }
  Tensor out = Tensor::Chw(channels, first.h, first.w);
  size_t at = 0;
  for (const Tensor* t : in) {
    std::copy(t->data.begin(), t->data.end(), out.data.begin() + static_cast<std::ptrdiff_t>(at));
    at += t->size();
  }
  return out;
}

Result<CropBox> CropRegion(const std::vector<const Tensor*>& in, const ncnn::ParamDict& p) {
  const Tensor& x = *in[0];
  if (x.dims != 3) return InvalidError("Crop needs a 3-D input");
  const ncnn::CropParams crop = ncnn::CropParams::Read(p);
  int c0 = 0, y0 = 0, x0 = 0, oc = x.c, oh = x.h, ow = x.w;
  if (crop.by_axes) {
    // starts / ends / axes style; axes count from the outside (c=0, h=1, w=2),
    // negative ones from the end; negative ends from the end of the axis.
    const std::vector<int>& starts = crop.starts;
    const std::vector<int>& ends = crop.ends;
    std::vector<int> axes = crop.axes;
    if (axes.empty()) {
      for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int>(i));
    }
    if (starts.size() != axes.size() || ends.size() != axes.size()) return InvalidError("Crop starts/ends/axes differ");
    for (size_t i = 0; i < axes.size(); ++i) {
      int axis = axes[i] < 0 ? axes[i] + 3 : axes[i];
      int size = axis == 0 ? x.c : axis == 1 ? x.h : x.w;
      int start = starts[i] < 0 ? starts[i] + size : starts[i];
      int end = ends[i] == -233 ? size : (ends[i] < 0 ? ends[i] + size : ends[i]);
      start = Clamp(start, 0, size);
      end = Clamp(end, start, size);
      (axis == 0 ? c0 : axis == 1 ? y0 : x0) = start;
      (axis == 0 ? oc : axis == 1 ? oh : ow) = end - start;
    }
  } else {
    x0 = crop.woffset;
    y0 = crop.hoffset;
    c0 = crop.coffset;
    if (in.size() == 2) {
      const Tensor& ref = *in[1];
      ow = ref.w;
      oh = ref.h;
      oc = ref.dims == 3 ? ref.c : x.c;
    } else {
      ow = crop.outw.value_or(x.w - x0);
      oh = crop.outh.value_or(x.h - y0);
      oc = crop.outc.value_or(x.c - c0);
    }
  }
  if (c0 < 0 || y0 < 0 || x0 < 0 || oc <= 0 || oh <= 0 || ow <= 0 || c0 + oc > x.c || y0 + oh > x.h ||
      x0 + ow > x.w) {
    return InvalidError("Crop region outside its input");
  }
  return CropBox{c0, y0, x0, oc, oh, ow};
}

Result<Tensor> Crop(const std::vector<const Tensor*>& in, const ncnn::ParamDict& p) {
  Result<CropBox> box = CropRegion(in, p);
  if (!box.ok()) return box.status();
  const Tensor& x = *in[0];
  const int c0 = box->c0, y0 = box->y0, x0 = box->x0, oc = box->c, oh = box->h, ow = box->w;
  Tensor out = Tensor::Chw(oc, oh, ow);
  for (int q = 0; q < oc; ++q) {
    for (int y = 0; y < oh; ++y) {
      const float* src = x.channel(c0 + q) + static_cast<size_t>(y0 + y) * x.w + x0;
      std::copy(src, src + ow, out.channel(q) + static_cast<size_t>(y) * ow);
    }
  }
  return out;
}

Result<InterpSize> InterpOutputSize(const Tensor& in, const ncnn::ParamDict& p) {
  const ncnn::InterpParams interp = ncnn::InterpParams::Read(p);
  int oh = interp.output_height;
  int ow = interp.output_width;
  if (oh == 0 || ow == 0) {
    oh = static_cast<int>(in.h * interp.height_scale);
    ow = static_cast<int>(in.w * interp.width_scale);
  }
  if (oh <= 0 || ow <= 0) return InvalidError("Interp output would be empty");
  return InterpSize{oh, ow};
}

std::vector<int> NearestIndices(int in_size, int out_size, const ncnn::ParamDict& p, bool vertical) {
  // Source index = output index / scale, truncated, clamped; the scale from the
  // output size when the layer gives one, else from the scale parameter.
  const ncnn::InterpParams interp = ncnn::InterpParams::Read(p);
  const int output_size = vertical ? interp.output_height : interp.output_width;
  const float inverse = output_size != 0 ? static_cast<float>(in_size) / out_size
                                         : 1.f / (vertical ? interp.height_scale : interp.width_scale);
  std::vector<int> index(out_size);
  for (int d = 0; d < out_size; ++d) index[d] = std::min(static_cast<int>(d * inverse), in_size - 1);
  return index;
}

Result<Tensor> Interp(const Tensor& in, const ncnn::ParamDict& p) {
  if (in.dims != 3) return InvalidError("Interp needs a 3-D input");
  const int type = ncnn::InterpParams::Read(p).resize_type;
  Result<InterpSize> size = InterpOutputSize(in, p);
  if (!size.ok()) return size.status();
  const int oh = size->h, ow = size->w;
  if (oh == in.h && ow == in.w) return in;
  Tensor out = Tensor::Chw(in.c, oh, ow);
  if (type == 1) {
    const std::vector<int> ys = NearestIndices(in.h, oh, p, /*vertical=*/true);
    const std::vector<int> xs = NearestIndices(in.w, ow, p, /*vertical=*/false);
    for (int q = 0; q < in.c; ++q) {
      for (int y = 0; y < oh; ++y) {
        for (int x = 0; x < ow; ++x) out.at(q, y, x) = in.at(q, ys[y], xs[x]);
      }
    }
    return out;
  }
  if (type == 2) {
    // Bilinear, half-pixel centres, edge-clamped.
    const double sy = static_cast<double>(in.h) / oh, sx = static_cast<double>(in.w) / ow;
    for (int q = 0; q < in.c; ++q) {
      for (int y = 0; y < oh; ++y) {
        float fy = static_cast<float>((y + 0.5) * sy - 0.5);
        int y0 = static_cast<int>(std::floor(fy));
        fy -= static_cast<float>(y0);
        if (y0 < 0) y0 = 0, fy = 0;
        if (y0 >= in.h - 1) y0 = std::max(in.h - 2, 0), fy = in.h > 1 ? 1.f : 0.f;
        for (int x = 0; x < ow; ++x) {
          float fx = static_cast<float>((x + 0.5) * sx - 0.5);
          int x0 = static_cast<int>(std::floor(fx));
          fx -= static_cast<float>(x0);
          if (x0 < 0) x0 = 0, fx = 0;
          if (x0 >= in.w - 1) x0 = std::max(in.w - 2, 0), fx = in.w > 1 ? 1.f : 0.f;
          const int x1 = std::min(x0 + 1, in.w - 1), y1 = std::min(y0 + 1, in.h - 1);
          const double top = in.at(q, y0, x0) * (1.0 - fx) + in.at(q, y0, x1) * double(fx);
          const double bottom = in.at(q, y1, x0) * (1.0 - fx) + in.at(q, y1, x1) * double(fx);
          out.at(q, y, x) = static_cast<float>(top * (1.0 - fy) + bottom * fy);
        }
      }
    }
    return out;
  }
  const CubicTaps xt = BicubicTaps(in.w, ow);
  const CubicTaps yt = BicubicTaps(in.h, oh);
  for (int q = 0; q < in.c; ++q) {
    for (int y = 0; y < oh; ++y) {
      for (int x = 0; x < ow; ++x) {
        double sum = 0;
        for (int i = 0; i < 4; ++i) {
          const int sy = Clamp(yt.first[y] + i, 0, in.h - 1);
          double row = 0;
          for (int j = 0; j < 4; ++j) {
            row += double(xt.weights[static_cast<size_t>(x) * 4 + j]) * in.at(q, sy, Clamp(xt.first[x] + j, 0, in.w - 1));
          }
          sum += double(yt.weights[static_cast<size_t>(y) * 4 + i]) * row;
        }
        out.at(q, y, x) = static_cast<float>(sum);
      }
    }
  }
  return out;
}

Result<Tensor> PixelShuffle(const Tensor& in, const ncnn::ParamDict& p) {
  const int r = p.GetInt(0, 1);
  if (in.dims != 3 || in.c % (r * r) != 0) return InvalidError("PixelShuffle channels not divisible by r*r");
  const int oc = in.c / (r * r);
  Tensor out = Tensor::Chw(oc, in.h * r, in.w * r);
  for (int q = 0; q < oc; ++q) {
    for (int sy = 0; sy < r; ++sy) {
      for (int sx = 0; sx < r; ++sx) {
        const int src_c = q * r * r + sy * r + sx;
        for (int y = 0; y < in.h; ++y) {
          for (int x = 0; x < in.w; ++x) out.at(q, y * r + sy, x * r + sx) = in.at(src_c, y, x);
        }
      }
    }
  }
  return out;
}

Result<Tensor> GlobalAveragePool(const Tensor& in) {
  if (in.dims != 3) return InvalidError("Pooling needs a 3-D input");
  Tensor out = Tensor::Vector(in.c);
  for (int q = 0; q < in.c; ++q) {
    double sum = 0;
    const float* d = in.channel(q);
    for (size_t i = 0; i < in.plane(); ++i) sum += d[i];
    out.data[q] = static_cast<float>(sum / static_cast<double>(in.plane()));
  }
  return out;
}

Result<std::vector<Tensor>> ForwardLayer(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights,
                                         const std::vector<const Tensor*>& inputs) {
  using ncnn::LayerKind;
  const ncnn::ParamDict& p = layer.params;
  auto one = [](Result<Tensor> r) -> Result<std::vector<Tensor>> {
    if (!r.ok()) return r.status();
    std::vector<Tensor> v;
    v.push_back(std::move(r).value());
    return v;
  };
  switch (layer.kind) {
    case LayerKind::kSplit: return std::vector<Tensor>(layer.tops.size(), *inputs[0]);
    case LayerKind::kConvolution: return one(Convolution(*inputs[0], p, weights));
    case LayerKind::kDeconvolution: return one(Deconvolution(*inputs[0], p, weights));
    case LayerKind::kInnerProduct: return one(InnerProduct(*inputs[0], p, weights));
    case LayerKind::kPRelu: return one(PRelu(*inputs[0], weights));
    case LayerKind::kEltwise: return one(Eltwise(inputs, p));
    case LayerKind::kBinaryOp: return one(BinaryOp(inputs, p));
    case LayerKind::kScale: return one(Scale(inputs, p, weights));
    case LayerKind::kConcat: return one(Concat(inputs, p));
    case LayerKind::kCrop: return one(Crop(inputs, p));
    case LayerKind::kInterp: return one(Interp(*inputs[0], p));
    case LayerKind::kPixelShuffle: return one(PixelShuffle(*inputs[0], p));
    case LayerKind::kPooling: return one(GlobalAveragePool(*inputs[0]));
    case LayerKind::kInput:
    case LayerKind::kUnknown: break;
  }
  return Status(StatusCode::kUnsupported, "layer type " + layer.type + " has no kernel");
}

}  // namespace tessera::engine::ops
