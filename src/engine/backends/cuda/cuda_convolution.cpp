// Convolution and Deconvolution on the CUDA backend: cuDNN's classic API when
// cuDNN loaded, the backend's direct kernels otherwise; then one epilogue
// kernel for bias, activation and the layers fused into the op (PReLU, a
// residual Eltwise sum or BinaryOp add). A deconvolution is cuDNN's backward
// data of a convolution with the transposed filter, computed uncropped and
// cropped by the epilogue.
//
// The cuDNN algorithm is chosen once per layer, on its first run, from cuDNN's
// heuristics (deterministic algorithms only; no tensor-op math in fp32), and
// kept for every later shape and batch: output bytes never depend on the
// budget, on retries or on how many tiles share a launch. A shape the chosen
// algorithm refuses runs on the direct kernels (logged once).
#include <atomic>
#include <cmath>
#include <mutex>
#include <sstream>

#include "engine/backends/cuda/cuda_backend.h"
#include "engine/ncnn/layer_params.h"
#include "util/log.h"

namespace tessera::engine::cuda {
namespace {

Status CudnnStatus(const CudnnLibrary& lib, cudnnStatus_t status, const std::string& what) {
  if (status == CUDNN_STATUS_SUCCESS) return Status::Ok();
  const std::string text = what + ": " + lib.cudnnGetErrorString(status);
  if (status == CUDNN_STATUS_ALLOC_FAILED) return Status(StatusCode::kOutOfMemory, text);
  if (status == CUDNN_STATUS_NOT_SUPPORTED) return Status(StatusCode::kUnsupported, text);
  return InternalError(text);
}

// The classic API's descriptors, destroyed with their owner.
struct Descriptors {
  const CudnnLibrary& lib;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  explicit Descriptors(const CudnnLibrary& l) : lib(l) {
    lib.cudnnCreateTensorDescriptor(&x);
    lib.cudnnCreateTensorDescriptor(&y);
    lib.cudnnCreateFilterDescriptor(&w);
    lib.cudnnCreateConvolutionDescriptor(&conv);
  }
  ~Descriptors() {
    if (x) lib.cudnnDestroyTensorDescriptor(x);
    if (y) lib.cudnnDestroyTensorDescriptor(y);
    if (w) lib.cudnnDestroyFilterDescriptor(w);
    if (conv) lib.cudnnDestroyConvolutionDescriptor(conv);
  }
};

// A layer fused after the convolution.
struct FusedLayer {
  kernels::PostOp::Kind kind = kernels::PostOp::kPrelu;
  const std::vector<float>* slopes = nullptr;  // kPrelu
  int input = 0;                               // kSum: index in OpInputs::tensors
  float self_coeff = 1.f, other_coeff = 1.f;
};

class CudaConvolution : public Op {
 public:
  CudaConvolution(const CudaBackend& backend, const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights)
      : backend_(backend),
        layer_(layer),
        weights_(weights),
        k_(ncnn::ConvParams::Read(layer.params)),
        deconv_(layer.kind == ncnn::LayerKind::kDeconvolution) {
    const size_t per_channel = static_cast<size_t>(k_.num_output) * k_.kw * k_.kh;
    in_channels_ = per_channel == 0 ? 0 : static_cast<int>(weights.weight.size() / per_channel);
  }

  bool ReadsLayout(size_t, Layout layout) const override { return layout == Layout::kChannelsLast; }

  bool Fuse(const ncnn::LayerSpec& next, const ncnn::LayerWeights& next_weights, int slot, Fusion* fusion) override {
    const int room = kernels::kMaxPostOps - (k_.activation_type != 0 ? 1 : 0);
    if (static_cast<int>(fused_.size()) >= room) return false;
    FusedLayer f;
    if (next.kind == ncnn::LayerKind::kPRelu) {
      const size_t n = next_weights.weight.size();
      if (n != 1 && n != static_cast<size_t>(k_.num_output)) return false;
      f.kind = kernels::PostOp::kPrelu;
      f.slopes = &next_weights.weight;
    } else if (next.kind == ncnn::LayerKind::kEltwise || next.kind == ncnn::LayerKind::kBinaryOp) {
      if (next.bottoms.size() != 2) return false;
      if (next.kind == ncnn::LayerKind::kEltwise) {
        const ncnn::EltwiseParams e = ncnn::EltwiseParams::Read(next.params);
        if (e.op != ncnn::EltwiseParams::kSum || (!e.coeffs.empty() && e.coeffs.size() != 2)) return false;
        if (!e.coeffs.empty()) f.self_coeff = e.coeffs[slot], f.other_coeff = e.coeffs[1 - slot];
      } else {
        const ncnn::BinaryOpParams b = ncnn::BinaryOpParams::Read(next.params);
        if (b.op != ncnn::BinaryOpParams::kAdd || b.with_scalar) return false;
      }
      f.kind = kernels::PostOp::kSum;
      f.input = 1 + extra_inputs_++;
      fusion->extra_bottoms.push_back(next.bottoms[1 - slot]);
    } else {
      return false;
    }
    fused_.push_back(f);
    return true;
  }

  Result<Tensor> Run(const OpInputs& run) const override {
    const Tensor& in = *run.tensors[0];
    if (!in.on_device() || in.dtype != backend_.dtype() || in.dims != 3) {
      return InvalidError(layer_.type + " needs a 3-D tensor of this CUDA backend");
    }
    if (in.c != in_channels_ || in_channels_ == 0) {
      return InvalidError(layer_.type + " weights do not match " + std::to_string(in.c) + " input channels");
    }
    Result<CudaThreadContext*> context_or = backend_.Context();
    if (!context_or.ok()) return context_or.status();
    const CudaThreadContext& context = **context_or;
    Status s = Prepare(context);
    if (!s.ok()) return s;

    const int out_w = k_.OutW(in.w, deconv_), out_h = k_.OutH(in.h, deconv_);
    const int full_w = deconv_ ? k_.DeconvFullW(in.w) : 0, full_h = deconv_ ? k_.DeconvFullH(in.h) : 0;
    if (out_w <= 0 || out_h <= 0) {
      return InvalidError(layer_.type + " output would be empty (an input smaller than its kernel, or cropped away)");
    }
    Result<Tensor> out = backend_.NewTensor(3, in.n, k_.num_output, out_h, out_w);
    if (!out.ok()) return out;

    kernels::Epilogue epilogue;
    s = BuildEpilogue(run, *out, &epilogue);
    if (!s.ok()) return s;
    const kernels::Shape4 out_shape = ShapeOf(*out);
    const DataType dtype = backend_.dtype();
    kernels::ConvGeometry g{k_.kw, k_.kh, k_.dw, k_.dh, k_.sw, k_.sh, k_.pad_left, k_.pad_top};

    bool done = false;
    if (cudnn_weights_) {
      Result<bool> ran = deconv_ ? RunCudnnDeconvolution(context, in, full_h, full_w, *out, epilogue)
                                 : RunCudnnConvolution(context, in, *out);
      if (!ran.ok()) return ran.status();
      done = *ran;
      if (done && !deconv_) {
        kernels::ApplyEpilogue(DevicePointer(*out), out_h, out_w, 0, 0, DevicePointer(*out), out_shape, dtype, epilogue,
                               context.stream);
      }
    }
    if (!done) {
      s = EnsureDirectWeights(context);
      if (!s.ok()) return s;
      if (deconv_) {
        kernels::DirectDeconvolution(DevicePointer(in), ShapeOf(in), static_cast<const float*>(direct_weights_.data()),
                                     DevicePointer(*out), out_shape, g, dtype, context.stream);
      } else {
        kernels::DirectConvolution(DevicePointer(in), ShapeOf(in), static_cast<const float*>(direct_weights_.data()),
                                   DevicePointer(*out), out_shape, g, dtype, context.stream);
      }
      kernels::ApplyEpilogue(DevicePointer(*out), out_h, out_w, 0, 0, DevicePointer(*out), out_shape, dtype, epilogue,
                             context.stream);
    }
    s = LastLaunchStatus(layer_.type + " on " + backend_.device().Name());
    if (!s.ok()) return s;
    return out;
  }

 private:
  // Weights on the device once: cuDNN's filter (KRSC in the backend's type) or
  // the direct kernels' fp32 copy, the bias and fused PReLU slopes in fp32.
  Status Prepare(const CudaThreadContext& context) const {
    std::lock_guard lock(mutex_);
    if (prepared_) return Status::Ok();
    if (!weights_.bias.empty() && k_.bias) {
      Result<gpu::DeviceBlock> b = backend_.Upload(weights_.bias, false, context);
      if (!b.ok()) return b.status();
      bias_ = std::move(b).value();
    }
    for (const FusedLayer& f : fused_) {
      if (f.kind != kernels::PostOp::kPrelu) continue;
      Result<gpu::DeviceBlock> slopes = backend_.Upload(*f.slopes, false, context);
      if (!slopes.ok()) return slopes.status();
      slopes_.push_back(std::move(slopes).value());
    }
    if (backend_.cudnn() != nullptr && context.cudnn != nullptr) {
      // cuDNN's filter: K x R x S x C. Convolution: K = outputs, C = inputs.
      // Deconvolution (backward data of the transposed convolution): K = inputs, C = outputs.
      const int K = deconv_ ? in_channels_ : k_.num_output, C = deconv_ ? k_.num_output : in_channels_;
      std::vector<float> krsc(weights_.weight.size());
      for (int oc = 0; oc < k_.num_output; ++oc) {
        for (int ic = 0; ic < in_channels_; ++ic) {
          for (int r = 0; r < k_.kh; ++r) {
            for (int s = 0; s < k_.kw; ++s) {
              const float v = weights_.weight[((static_cast<size_t>(oc) * in_channels_ + ic) * k_.kh + r) * k_.kw + s];
              const int kk = deconv_ ? ic : oc, cc = deconv_ ? oc : ic;
              krsc[((static_cast<size_t>(kk) * k_.kh + r) * k_.kw + s) * C + cc] = v;
            }
          }
        }
      }
      (void)K;
      Result<gpu::DeviceBlock> w = backend_.Upload(krsc, backend_.dtype() == DataType::kF16, context);
      if (!w.ok()) return w.status();
      cudnn_filter_ = std::move(w).value();
      cudnn_weights_ = true;
    }
    prepared_ = true;
    return Status::Ok();
  }

  Status EnsureDirectWeights(const CudaThreadContext& context) const {
    std::lock_guard lock(mutex_);
    if (direct_weights_) return Status::Ok();
    std::vector<float> w(weights_.weight.size());
    if (deconv_) {
      w = weights_.weight;  // the deconvolution kernel reads ncnn's order
    } else {
      for (int oc = 0; oc < k_.num_output; ++oc) {
        for (int ic = 0; ic < in_channels_; ++ic) {
          for (int r = 0; r < k_.kh; ++r) {
            for (int s = 0; s < k_.kw; ++s) {
              w[((static_cast<size_t>(oc) * k_.kh + r) * k_.kw + s) * in_channels_ + ic] =
                  weights_.weight[((static_cast<size_t>(oc) * in_channels_ + ic) * k_.kh + r) * k_.kw + s];
            }
          }
        }
      }
    }
    Result<gpu::DeviceBlock> block = backend_.Upload(w, false, context);
    if (!block.ok()) return block.status();
    direct_weights_ = std::move(block).value();
    return Status::Ok();
  }

  Status BuildEpilogue(const OpInputs& run, const Tensor& out, kernels::Epilogue* e) const {
    e->bias = bias_ ? static_cast<const float*>(bias_.data()) : nullptr;
    if (k_.activation_type != 0) {
      kernels::PostOp& op = e->ops[e->count++];
      op.kind = kernels::PostOp::kActivation;
      op.activation = k_.activation_type;
      op.a = k_.activation_params.size() > 0 ? k_.activation_params[0] : (k_.activation_type == 3 ? -INFINITY : 0.f);
      op.b = k_.activation_params.size() > 1 ? k_.activation_params[1] : INFINITY;
    }
    size_t prelu = 0;
    for (const FusedLayer& f : fused_) {
      kernels::PostOp& op = e->ops[e->count++];
      op.kind = f.kind;
      if (f.kind == kernels::PostOp::kPrelu) {
        op.slopes = static_cast<const float*>(slopes_[prelu++].data());
        op.slope_count = static_cast<int>(f.slopes->size());
        continue;
      }
      if (f.input >= static_cast<int>(run.tensors.size())) return InternalError("fused input missing");
      const Tensor& other = *run.tensors[f.input];
      const bool same = other.dims == 3 && other.n == out.n && other.c == out.c && other.h == out.h && other.w == out.w;
      const bool vector = other.dims == 1 && other.n == out.n && other.w == out.c;
      if (!other.on_device() || other.dtype != out.dtype || (!same && !vector)) {
        return InvalidError("the residual added to " + layer_.type + " does not match its output");
      }
      op.other = DevicePointer(other);
      op.other_is_vector = vector;
      op.self_coeff = f.self_coeff;
      op.other_coeff = f.other_coeff;
    }
    return Status::Ok();
  }

  cudnnDataType_t CudnnType() const { return backend_.dtype() == DataType::kF16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT; }

  // Picks the first deterministic algorithm cuDNN's heuristics rank, with no
  // tensor-op math in fp32; kept for the layer's life.
  template <typename Perf>
  bool Choose(const Perf* perf, int count, int* algo, cudnnMathType_t* math) const {
    for (int i = 0; i < count; ++i) {
      if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].determinism != CUDNN_DETERMINISTIC) continue;
      if (backend_.dtype() == DataType::kF32 && perf[i].mathType != CUDNN_DEFAULT_MATH &&
          perf[i].mathType != CUDNN_FMA_MATH) {
        continue;
      }
      *algo = static_cast<int>(perf[i].algo);
      // fp32 runs with FMA math: CUDNN_DEFAULT_MATH would allow TF32 on Ampere and later.
      *math = backend_.dtype() == DataType::kF32 ? CUDNN_FMA_MATH : perf[i].mathType;
      return true;
    }
    return false;
  }

  // The layer's algorithm and math type: chosen once, from the ranking `rank`
  // fills (cuDNN's heuristics for this layer's kind), then kept for every shape
  // and batch. false when cuDNN ranks no usable algorithm.
  template <typename Perf, int kCount, typename Rank>
  Result<bool> ChosenAlgorithm(const CudnnLibrary& lib, Rank rank, const char* what, int* algo,
                               cudnnMathType_t* math) const {
    std::lock_guard lock(mutex_);
    if (!algo_chosen_) {
      Perf perf[kCount];
      int returned = 0;
      Status s = CudnnStatus(lib, rank(kCount, &returned, perf), what);
      if (!s.ok()) return s;
      if (!Choose(perf, returned, &algo_, &math_)) return false;
      algo_chosen_ = true;
    }
    *algo = algo_;
    *math = math_;
    return true;
  }

  Status Describe(Descriptors& d, const Tensor& in, int y_n, int y_c, int y_h, int y_w, int K, int C, int pad_h,
                  int pad_w) const {
    const CudnnLibrary& lib = *backend_.cudnn();
    Status s = CudnnStatus(lib, lib.cudnnSetTensor4dDescriptor(d.x, CUDNN_TENSOR_NHWC, CudnnType(), in.n, in.c, in.h, in.w),
                           "input descriptor");
    if (s.ok()) {
      s = CudnnStatus(lib, lib.cudnnSetTensor4dDescriptor(d.y, CUDNN_TENSOR_NHWC, CudnnType(), y_n, y_c, y_h, y_w),
                      "output descriptor");
    }
    if (s.ok()) {
      s = CudnnStatus(lib, lib.cudnnSetFilter4dDescriptor(d.w, CudnnType(), CUDNN_TENSOR_NHWC, K, C, k_.kh, k_.kw),
                      "filter descriptor");
    }
    if (s.ok()) {
      s = CudnnStatus(lib,
                      lib.cudnnSetConvolution2dDescriptor(d.conv, pad_h, pad_w, k_.sh, k_.sw, k_.dh, k_.dw,
                                                          CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                      "convolution descriptor");
    }
    if (s.ok()) {
      const cudnnMathType_t math = backend_.dtype() == DataType::kF16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
      s = CudnnStatus(lib, lib.cudnnSetConvolutionMathType(d.conv, math), "math type");
    }
    return s;
  }

  // false: cuDNN cannot run this shape (asymmetric padding, or the chosen
  // algorithm refuses it); the caller runs the direct kernels.
  Result<bool> RunCudnnConvolution(const CudaThreadContext& context, const Tensor& in, const Tensor& out) const {
    if (k_.pad_left != k_.pad_right || k_.pad_top != k_.pad_bottom || k_.pad_left < 0 || k_.pad_top < 0) return false;
    const CudnnLibrary& lib = *backend_.cudnn();
    Descriptors d(lib);
    Status s = Describe(d, in, out.n, out.c, out.h, out.w, k_.num_output, in_channels_, k_.pad_top, k_.pad_left);
    if (!s.ok()) return s;
    int algo = 0;
    cudnnMathType_t math = CUDNN_DEFAULT_MATH;
    Result<bool> chosen = ChosenAlgorithm<cudnnConvolutionFwdAlgoPerf_t, CUDNN_CONVOLUTION_FWD_ALGO_COUNT>(
        lib,
        [&](int count, int* returned, cudnnConvolutionFwdAlgoPerf_t* perf) {
          return lib.cudnnGetConvolutionForwardAlgorithm_v7(context.cudnn, d.x, d.w, d.conv, d.y, count, returned,
                                                            perf);
        },
        "choosing a convolution algorithm", &algo, &math);
    if (!chosen.ok()) return chosen.status();
    if (!*chosen) return NoAlgorithm();
    s = CudnnStatus(lib, lib.cudnnSetConvolutionMathType(d.conv, math), "math type");
    if (!s.ok()) return s;
    size_t workspace_bytes = 0;
    const auto fwd = static_cast<cudnnConvolutionFwdAlgo_t>(algo);
    if (lib.cudnnGetConvolutionForwardWorkspaceSize(context.cudnn, d.x, d.w, d.conv, d.y, fwd, &workspace_bytes) !=
        CUDNN_STATUS_SUCCESS) {
      return NoAlgorithm();
    }
    gpu::DeviceBlock workspace;
    if (workspace_bytes > 0) {
      Result<gpu::DeviceBlock> ws = backend_.Scratch(workspace_bytes, context);
      if (!ws.ok()) return ws.status();
      workspace = std::move(ws).value();
    }
    const float alpha = 1.f, beta = 0.f;
    s = CudnnStatus(lib,
                    lib.cudnnConvolutionForward(context.cudnn, &alpha, d.x, DevicePointer(in), d.w, cudnn_filter_.data(),
                                                d.conv, fwd, workspace.data(), workspace_bytes, &beta, d.y,
                                                DevicePointer(out)),
                    "cudnnConvolutionForward");
    if (s.code() == StatusCode::kUnsupported) return NoAlgorithm();
    if (!s.ok()) return s;
    return true;
  }

  // Backward data into the uncropped output, then the epilogue crops it into `out`.
  Result<bool> RunCudnnDeconvolution(const CudaThreadContext& context, const Tensor& in, int full_h, int full_w,
                                     const Tensor& out, const kernels::Epilogue& epilogue) const {
    if (k_.pad_left < 0 || k_.pad_top < 0 || k_.pad_right < 0 || k_.pad_bottom < 0) return false;
    const CudnnLibrary& lib = *backend_.cudnn();
    Descriptors d(lib);
    // x: the deconvolution's input (cuDNN's dy); y: its uncropped output (dx).
    Status s = Describe(d, in, out.n, out.c, full_h, full_w, in_channels_, k_.num_output, 0, 0);
    if (!s.ok()) return s;
    int algo = 0;
    cudnnMathType_t math = CUDNN_DEFAULT_MATH;
    Result<bool> chosen = ChosenAlgorithm<cudnnConvolutionBwdDataAlgoPerf_t, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT>(
        lib,
        [&](int count, int* returned, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
          return lib.cudnnGetConvolutionBackwardDataAlgorithm_v7(context.cudnn, d.w, d.x, d.conv, d.y, count,
                                                                 returned, perf);
        },
        "choosing a deconvolution algorithm", &algo, &math);
    if (!chosen.ok()) return chosen.status();
    if (!*chosen) return NoAlgorithm();
    s = CudnnStatus(lib, lib.cudnnSetConvolutionMathType(d.conv, math), "math type");
    if (!s.ok()) return s;
    const auto bwd = static_cast<cudnnConvolutionBwdDataAlgo_t>(algo);
    size_t workspace_bytes = 0;
    if (lib.cudnnGetConvolutionBackwardDataWorkspaceSize(context.cudnn, d.w, d.x, d.conv, d.y, bwd, &workspace_bytes) !=
        CUDNN_STATUS_SUCCESS) {
      return NoAlgorithm();
    }
    Result<Tensor> full = backend_.NewTensor(3, out.n, out.c, full_h, full_w);
    if (!full.ok()) return full.status();
    gpu::DeviceBlock workspace;
    if (workspace_bytes > 0) {
      Result<gpu::DeviceBlock> ws = backend_.Scratch(workspace_bytes, context);
      if (!ws.ok()) return ws.status();
      workspace = std::move(ws).value();
    }
    const float alpha = 1.f, beta = 0.f;
    s = CudnnStatus(lib,
                    lib.cudnnConvolutionBackwardData(context.cudnn, &alpha, d.w, cudnn_filter_.data(), d.x,
                                                     DevicePointer(in), d.conv, bwd, workspace.data(), workspace_bytes,
                                                     &beta, d.y, DevicePointer(*full)),
                    "cudnnConvolutionBackwardData");
    if (s.code() == StatusCode::kUnsupported) return NoAlgorithm();
    if (!s.ok()) return s;
    kernels::ApplyEpilogue(DevicePointer(*full), full_h, full_w, k_.pad_top, k_.pad_left, DevicePointer(out), ShapeOf(out),
                           out.dtype, epilogue, context.stream);
    return true;
  }

  // "cudnn-fwd <algo> <math>" or "cudnn-bwd-data <algo> <math>" (runtime/plan_choices.h).
  std::string SavedChoice() const override {
    std::lock_guard lock(mutex_);
    if (!algo_chosen_) return {};
    return std::string(deconv_ ? "cudnn-bwd-data " : "cudnn-fwd ") + std::to_string(algo_) + " " +
           std::to_string(static_cast<int>(math_));
  }

  // Only a choice of this layer's kind with an algorithm and math type cuDNN
  // defines and this precision allows; anything else is ignored. The heuristics
  // would choose the same on the fingerprint the file is keyed by.
  void RestoreChoice(const std::string& saved) override {
    std::istringstream words(saved);
    std::string kind;
    int algo = -1, math = -1;
    if (!(words >> kind >> algo >> math) || !words.eof()) return;
    if (kind != (deconv_ ? "cudnn-bwd-data" : "cudnn-fwd")) return;
    const int algo_count = deconv_ ? static_cast<int>(CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT)
                                   : static_cast<int>(CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
    if (algo < 0 || algo >= algo_count) return;
    const bool fp32 = backend_.dtype() == DataType::kF32;
    if (fp32 ? math != CUDNN_FMA_MATH
             : math != CUDNN_DEFAULT_MATH && math != CUDNN_TENSOR_OP_MATH &&
                   math != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) {
      return;
    }
    std::lock_guard lock(mutex_);
    algo_ = algo;
    math_ = static_cast<cudnnMathType_t>(math);
    algo_chosen_ = true;
  }

  bool NoAlgorithm() const {
    if (!warned_.exchange(true)) {
      LogWarn("cuda_direct_convolution").Field("layer", layer_.name).Field("type", layer_.type).Field(
          "reason", "cuDNN has no deterministic algorithm for this shape");
    }
    return false;
  }

  const CudaBackend& backend_;
  const ncnn::LayerSpec& layer_;
  const ncnn::LayerWeights& weights_;
  const ncnn::ConvParams k_;
  const bool deconv_;
  int in_channels_ = 0;
  std::vector<FusedLayer> fused_;
  int extra_inputs_ = 0;

  mutable std::mutex mutex_;
  mutable bool prepared_ = false;
  mutable bool cudnn_weights_ = false;
  mutable gpu::DeviceBlock cudnn_filter_;
  mutable gpu::DeviceBlock direct_weights_;
  mutable gpu::DeviceBlock bias_;
  mutable std::vector<gpu::DeviceBlock> slopes_;
  mutable bool algo_chosen_ = false;
  mutable int algo_ = 0;
  mutable cudnnMathType_t math_ = CUDNN_DEFAULT_MATH;
  mutable std::atomic<bool> warned_{false};
};

}  // namespace

std::unique_ptr<Op> MakeConvolutionOp(const CudaBackend& backend, const ncnn::LayerSpec& layer,
                                      const ncnn::LayerWeights& weights) {
  return std::make_unique<CudaConvolution>(backend, layer, weights);
}

}  // namespace tessera::engine::cuda
