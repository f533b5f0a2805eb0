// oneDNN (CPU) as a backend: every layer type the models use on oneDNN
// primitives (ops/dnnl_op.h) but bicubic Interp, which it declines (the
// executor runs the reference kernel for it). Activations stay in the layout
// oneDNN chooses for this CPU, convolutions absorb the activations and
// residual sums that follow them.
#pragma once

#include <optional>

#include "engine/backend.h"
#include "engine/ops/dnnl_convolution.h"

namespace tessera::engine {

struct OneDnnBackendOptions {
  // Force one activation layout (tests); nullopt lets oneDNN choose per CPU.
  std::optional<Layout> layout;
  bool fuse = true;       // convolution + activation / residual sum as one primitive...
  bool fuse_on_any_kernel = false;  // ...even where that primitive would be oneDNN's slow reference kernel (tests)
  bool winograd = true;  // oneDNN's Winograd 3x3 convolutions where it has them
  bool post_ops_after = false;  // tests: activations/PReLUs as passes after every convolution (DnnlConvOptions)
};

class OneDnnBackend : public Backend {
 public:
  explicit OneDnnBackend(OneDnnBackendOptions options = {});

  // Whether oneDNN starts on this machine (false: use the reference backend).
  static bool Available();
  // The instruction set oneDNN runs with here ("avx2", "avx512_core", ...),
  // after ONEDNN_MAX_CPU_ISA.
  static std::string EffectiveIsa();

  std::string name() const override { return "onednn"; }
  Device device() const override { return Device::Cpu(); }
  // oneDNN version, effective ISA and the options that change prepared plans.
  std::string Fingerprint() const override;

  std::unique_ptr<Op> MakeOp(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights) override;

  BackendMemory ProbeMemory() const override;
  Result<Tensor> Allocate(int dims, int c, int h, int w, Layout layout, DataType dtype) const override;
  void ReleaseCachedMemory() const override;

  bool HostMemory() const override { return true; }
  Result<Tensor> FromHost(Tensor host) const override;
  Result<Tensor> ToHost(const Tensor& t) const override;
  Result<Tensor> Convert(const Tensor& t, Layout layout) const override;

  const OneDnnBackendOptions& options() const { return options_; }

 private:
  OneDnnBackendOptions options_;
};

}  // namespace tessera::engine
