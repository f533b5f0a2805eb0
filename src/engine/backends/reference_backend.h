// The reference kernels (ops/reference_ops.h) as a backend: every layer type the
// models use, plain layout only, in double accumulation. Slow and obviously
// correct: what the fast backends are tested against, and the fallback for a
// layer a faster backend declines.
#pragma once

#include "engine/backend.h"

namespace tessera::engine {

class ReferenceBackend : public Backend {
 public:
  std::string name() const override { return "reference"; }
  Device device() const override { return Device::Cpu(); }
  std::string Fingerprint() const override { return "reference"; }

  // Every layer type the model loader accepts (Input and Split are the
  // executor's own and get no op).
  std::unique_ptr<Op> MakeOp(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights) override;

  BackendMemory ProbeMemory() const override;
  Result<Tensor> Allocate(int dims, int c, int h, int w, Layout layout, DataType dtype) const override;
  void ReleaseCachedMemory() const override;

  bool HostMemory() const override { return true; }
  Result<Tensor> FromHost(Tensor host) const override;
  // Its own tensors are plain: another layout is kUnsupported here.
  Result<Tensor> ToHost(const Tensor& t) const override;
  Result<Tensor> Convert(const Tensor& t, Layout layout) const override;
};

}  // namespace tessera::engine
