// Reference convolution, deconvolution, inner product and activations.
#include <algorithm>
#include <cmath>

#include "engine/ops/conv_window.h"
#include "engine/ops/reference_ops.h"

namespace tessera::engine::ops {
void ApplyActivation(int type, const std::vector<float>& params, float* data, size_t n) {
  switch (type) {
    case 1:
      for (size_t i = 0; i < n; ++i) data[i] = std::max(data[i], 0.f);
      break;
    case 2: {
      const float slope = params.empty() ? 0.f : params[0];
      for (size_t i = 0; i < n; ++i) data[i] = data[i] > 0 ? data[i] : data[i] * slope;
      break;
    }
    case 3: {
      const float lo = params.size() > 0 ? params[0] : -INFINITY;
      const float hi = params.size() > 1 ? params[1] : INFINITY;
      for (size_t i = 0; i < n; ++i) data[i] = std::min(std::max(data[i], lo), hi);
      break;
    }
    case 4:
      for (size_t i = 0; i < n; ++i) data[i] = static_cast<float>(1.0 / (1.0 + std::exp(-double(data[i]))));
      break;
    default:
      break;
  }
}

Result<Tensor> Convolution(const Tensor& in, const ncnn::ParamDict& p, const ncnn::LayerWeights& w) {
  const ConvWindow k = ConvWindow::Read(p);
  if (in.dims != 3) return InvalidError("Convolution needs a 3-D input");
  const int ext_w = k.extent_w();
  const int ext_h = k.extent_h();
  const int padded_w = in.w + k.pad_left + k.pad_right;
  const int padded_h = in.h + k.pad_top + k.pad_bottom;
  if (padded_w < ext_w || padded_h < ext_h) return InvalidError("Convolution input smaller than its kernel");
  const int out_w = (padded_w - ext_w) / k.sw + 1;
  const int out_h = (padded_h - ext_h) / k.sh + 1;
  const size_t per_output = static_cast<size_t>(in.c) * k.kw * k.kh;
  if (w.weight.size() != per_output * k.num_output) {
    return InvalidError("Convolution weights do not match " + std::to_string(in.c) + " input channels");
  }
  Tensor out = Tensor::Chw(k.num_output, out_h, out_w);
  std::vector<double> acc(static_cast<size_t>(out_h) * out_w);
  for (int oc = 0; oc < k.num_output; ++oc) {
    std::fill(acc.begin(), acc.end(), k.bias ? double(w.bias[oc]) : 0.0);
    for (int ic = 0; ic < in.c; ++ic) {
      const float* src = in.channel(ic);
      for (int ky = 0; ky < k.kh; ++ky) {
        for (int kx = 0; kx < k.kw; ++kx) {
          const double wv = w.weight[((static_cast<size_t>(oc) * in.c + ic) * k.kh + ky) * k.kw + kx];
          for (int y = 0; y < out_h; ++y) {
            const int sy = y * k.sh + ky * k.dh - k.pad_top;
            if (sy < 0 || sy >= in.h) continue;
            double* row = acc.data() + static_cast<size_t>(y) * out_w;
            const float* srow = src + static_cast<size_t>(sy) * in.w;
            for (int x = 0; x < out_w; ++x) {
              const int sx = x * k.sw + kx * k.dw - k.pad_left;
              if (sx >= 0 && sx < in.w) row[x] += wv * srow[sx];
            }
          }
        }
      }
    }
    float* dst = out.channel(oc);
    for (size_t i = 0; i < acc.size(); ++i) dst[i] = static_cast<float>(acc[i]);
  }
  ApplyActivation(k.activation_type, k.activation_params, out.data.data(), out.size());
  return out;
}

Result<Tensor> Deconvolution(const Tensor& in, const ncnn::ParamDict& p, const ncnn::LayerWeights& w) {
  const ConvWindow k = ConvWindow::Read(p);
  if (in.dims != 3) return InvalidError("Deconvolution needs a 3-D input");
  const int ext_w = k.extent_w();
  const int ext_h = k.extent_h();
  const int full_w = (in.w - 1) * k.sw + ext_w + k.out_pad_right;
  const int full_h = (in.h - 1) * k.sh + ext_h + k.out_pad_bottom;
  if (w.weight.size() != static_cast<size_t>(in.c) * k.kw * k.kh * k.num_output) {
    return InvalidError("Deconvolution weights do not match " + std::to_string(in.c) + " input channels");
  }
  std::vector<double> full(static_cast<size_t>(full_w) * full_h);
  const int out_w = full_w - k.pad_left - k.pad_right;
  const int out_h = full_h - k.pad_top - k.pad_bottom;
  if (out_w <= 0 || out_h <= 0) return InvalidError("Deconvolution output would be empty");
  Tensor out = Tensor::Chw(k.num_output, out_h, out_w);
  for (int oc = 0; oc < k.num_output; ++oc) {
    std::fill(full.begin(), full.end(), k.bias ? double(w.bias[oc]) : 0.0);
    for (int ic = 0; ic < in.c; ++ic) {
      const float* src = in.channel(ic);
      for (int ky = 0; ky < k.kh; ++ky) {
        for (int kx = 0; kx < k.kw; ++kx) {
          // ncnn stores deconvolution weights as [out][in][kh][kw].
          const double wv = w.weight[((static_cast<size_t>(oc) * in.c + ic) * k.kh + ky) * k.kw + kx];
          for (int y = 0; y < in.h; ++y) {
            double* row = full.data() + static_cast<size_t>(y * k.sh + ky * k.dh) * full_w + kx * k.dw;
            const float* srow = src + static_cast<size_t>(y) * in.w;
            for (int x = 0; x < in.w; ++x) row[x * k.sw] += wv * srow[x];
          }
        }
      }
    }
    float* dst = out.channel(oc);
    for (int y = 0; y < out_h; ++y) {
      for (int x = 0; x < out_w; ++x) {
        dst[static_cast<size_t>(y) * out_w + x] =
            static_cast<float>(full[static_cast<size_t>(y + k.pad_top) * full_w + x + k.pad_left]);
      }
    }
  }
  ApplyActivation(k.activation_type, k.activation_params, out.data.data(), out.size());
  return out;
}

Result<Tensor> InnerProduct(const Tensor& in, const ncnn::ParamDict& p, const ncnn::LayerWeights& w) {
  const ncnn::InnerProductParams ip = ncnn::InnerProductParams::Read(p);
  const int num_output = ip.num_output;
  const size_t n = in.size();
  if (w.weight.size() != n * static_cast<size_t>(num_output)) {
    return InvalidError("InnerProduct weights do not match an input of " + std::to_string(n));
  }
  Tensor out = Tensor::Vector(num_output);
  for (int i = 0; i < num_output; ++i) {
    double sum = ip.bias ? double(w.bias[i]) : 0.0;
    for (size_t j = 0; j < n; ++j) sum += double(w.weight[i * n + j]) * in.data[j];
    out.data[i] = static_cast<float>(sum);
  }
  ApplyActivation(ip.activation_type, ip.activation_params, out.data.data(), out.size());
  return out;
}

}  // namespace tessera::engine::ops
