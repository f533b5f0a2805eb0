#include "engine/backends/reference_backend.h"

#include "engine/backends/host_memory.h"
#include "engine/ncnn/layer_table.h"
#include "engine/ops/reference_ops.h"

namespace tessera::engine {
namespace {

class ReferenceOp : public Op {
 public:
  ReferenceOp(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights) : layer_(layer), weights_(weights) {}

  Result<Tensor> Run(const OpInputs& run) const override {
    // PReLU in place when the caller gave its input up: no copy of a large map.
    if (layer_.kind == ncnn::LayerKind::kPRelu && !run.writable.empty() && run.writable[0] != nullptr) {
      Status applied = ops::PReluInPlace(run.writable[0], weights_);
      if (!applied.ok()) return applied;
      return std::move(*run.writable[0]);
    }
    Result<std::vector<Tensor>> outputs = ops::ForwardLayer(layer_, weights_, run.tensors);
    if (!outputs.ok()) return outputs.status();
    if (outputs->size() != 1) return InternalError(layer_.type + " gave " + std::to_string(outputs->size()) + " outputs");
    return std::move((*outputs)[0]);
  }

 private:
  const ncnn::LayerSpec& layer_;
  const ncnn::LayerWeights& weights_;
};

}  // namespace

std::unique_ptr<Op> ReferenceBackend::MakeOp(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights) {
  const ncnn::LayerInfo* info = ncnn::InfoOf(layer.kind);
  if (info == nullptr || info->graph_only) return nullptr;
  return std::make_unique<ReferenceOp>(layer, weights);
}

BackendMemory ReferenceBackend::ProbeMemory() const { return ProbeHostMemory(); }

Result<Tensor> ReferenceBackend::Allocate(int dims, int c, int h, int w, Layout layout, DataType dtype) const {
  if (layout != Layout::kPlain) return Status(StatusCode::kUnsupported, "the reference backend keeps plain tensors");
  return AllocateHostTensor(dims, c, h, w, layout, dtype);
}

void ReferenceBackend::ReleaseCachedMemory() const { ReleaseHostCache(); }

Result<Tensor> ReferenceBackend::FromHost(Tensor host) const {
  if (host.on_device() || host.layout != Layout::kPlain) return InvalidError("FromHost takes a plain host tensor");
  return host;
}

Result<Tensor> ReferenceBackend::ToHost(const Tensor& t) const { return Convert(t, Layout::kPlain); }

Result<Tensor> ReferenceBackend::Convert(const Tensor& t, Layout layout) const {
  if (t.layout != Layout::kPlain || layout != Layout::kPlain) {
    return Status(StatusCode::kUnsupported, "the reference backend converts no layouts");
  }
  return t;
}

}  // namespace tessera::engine
