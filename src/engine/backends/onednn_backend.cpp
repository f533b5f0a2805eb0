#include "engine/backends/onednn_backend.h"

#include <oneapi/dnnl/dnnl.hpp>

#include "engine/backends/host_memory.h"
#include "engine/ops/dnnl_op.h"

namespace tessera::engine {

OneDnnBackend::OneDnnBackend(OneDnnBackendOptions options) : options_(options) {}

bool OneDnnBackend::Available() { return ops::DnnlAvailable(); }

std::string OneDnnBackend::EffectiveIsa() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_mic: return "avx512_mic";
    case dnnl::cpu_isa::avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}

std::string OneDnnBackend::Fingerprint() const {
  const dnnl_version_t* v = dnnl_version();
  std::string text = "onednn-" + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                     std::to_string(v->patch) + " isa=" + EffectiveIsa();
  text += " layout=" + (options_.layout ? std::string(LayoutName(*options_.layout)) : std::string("auto"));
  if (!options_.fuse) text += " unfused";
  if (options_.fuse_on_any_kernel) text += " fuse-always";
  if (options_.winograd) text += " winograd";
  if (options_.post_ops_after) text += " post-ops-after";
  return text;
}

std::unique_ptr<Op> OneDnnBackend::MakeOp(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights) {
  ops::DnnlConvOptions conv;
  conv.layout = options_.layout;
  conv.fuse = options_.fuse;
  conv.fuse_on_any_kernel = options_.fuse_on_any_kernel;
  conv.winograd = options_.winograd;
  conv.post_ops_after = options_.post_ops_after;
  return ops::MakeDnnlOp(layer, weights, conv);
}

BackendMemory OneDnnBackend::ProbeMemory() const { return ProbeHostMemory(); }

Result<Tensor> OneDnnBackend::Allocate(int dims, int c, int h, int w, Layout layout, DataType dtype) const {
  return AllocateHostTensor(dims, c, h, w, layout, dtype);
}

void OneDnnBackend::ReleaseCachedMemory() const { ReleaseHostCache(); }

Result<Tensor> OneDnnBackend::FromHost(Tensor host) const {
  if (host.on_device()) return InvalidError("FromHost takes a host tensor");
  return host;
}

Result<Tensor> OneDnnBackend::ToHost(const Tensor& t) const { return ops::ToPlain(t); }

Result<Tensor> OneDnnBackend::Convert(const Tensor& t, Layout layout) const {
  if (t.layout == layout) return t;
  return ops::ToLayout(t, layout);
}

}  // namespace tessera::engine
