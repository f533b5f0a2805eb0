#include "engine/graph_executor.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "engine/ops/dnnl_op.h"
#include "engine/ops/reference_ops.h"

namespace tessera::engine {

GraphExecutor::GraphExecutor(const ncnn::Model& model, ComputeBackend backend)
    : model_(model), use_dnnl_(backend == ComputeBackend::kOneDnn) {
  const auto& layers = model.graph.layers;
  last_use_.assign(model.graph.blob_names.size(), -1);
  dnnl_ops_.resize(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    if (use_dnnl_) dnnl_ops_[i] = ops::MakeDnnlOp(layers[i], model.weights[i]);
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i].type == "Input" && input_blob_ < 0) input_blob_ = layers[i].tops[0];
    for (int b : layers[i].bottoms) last_use_[b] = static_cast<int>(i);
  }
  if (!layers.empty() && !layers.back().tops.empty()) output_blob_ = layers.back().tops[0];

  // A layer may write oneDNN's blocked layout only when every reader (through
  // Splits) is a oneDNN op that takes it as is; otherwise it writes plain.
  std::vector<std::vector<size_t>> readers(model.graph.blob_names.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    for (int b : layers[i].bottoms) readers[b].push_back(i);
  }
  std::function<bool(int)> all_take_blocked = [&](int blob) {
    if (blob == output_blob_ || readers[blob].empty()) return false;
    for (size_t r : readers[blob]) {
      const std::string& t = layers[r].type;
      if (t == "Split") {
        for (int top : layers[r].tops) {
          if (!all_take_blocked(top)) return false;
        }
      } else if (dnnl_ops_[r] == nullptr || !dnnl_ops_[r]->TakesBlockedInput()) {
        return false;
      }
    }
    return true;
  };
  blocked_output_.assign(layers.size(), false);
  for (size_t i = 0; i < layers.size(); ++i) {
    if (dnnl_ops_[i] != nullptr) blocked_output_[i] = all_take_blocked(layers[i].tops[0]);
  }
}

GraphExecutor::~GraphExecutor() = default;

namespace {

// Bytes held by the distinct live blobs (Split shares one tensor between several
// names) plus a layer's fresh outputs: the memory in use at that point of a run.
uint64_t LiveBytes(const std::vector<std::shared_ptr<Tensor>>& blobs, const std::vector<Tensor>& outputs) {
  std::vector<const Tensor*> seen;
  uint64_t bytes = 0;
  for (const auto& blob : blobs) {
    if (!blob || std::find(seen.begin(), seen.end(), blob.get()) != seen.end()) continue;
    seen.push_back(blob.get());
    bytes += blob->data.size() * sizeof(float);
  }
  for (const Tensor& t : outputs) bytes += t.data.size() * sizeof(float);
  return bytes;
}

}  // namespace

Result<Tensor> GraphExecutor::Run(Tensor input, const Deadline& deadline, RunStats* stats) const {
  if (input_blob_ < 0 || output_blob_ < 0) return InvalidError(model_.name + ": model has no input or output blob");
  // Blobs are shared: Split hands the same one to each reader. A blob changes in
  // place only when this layer is its sole owner and last reader (elementwise
  // layers), or when its layout is converted (same values, so every sharer may
  // see it).
  std::vector<std::shared_ptr<Tensor>> blobs(model_.graph.blob_names.size());
  const auto& layers = model_.graph.layers;
  for (size_t i = 0; i < layers.size(); ++i) {
    const ncnn::LayerSpec& layer = layers[i];
    if (deadline.Expired()) return Status(StatusCode::kTimeout, "cancelled: request deadline passed");
    if (layer.type == "Input") {
      blobs[layer.tops[0]] = std::make_shared<Tensor>(std::move(input));
      continue;
    }
    if (layer.type == "Split") {
      if (!blobs[layer.bottoms[0]]) return InternalError(model_.name + ": Split input missing");
      for (int t : layer.tops) blobs[t] = blobs[layer.bottoms[0]];
      if (last_use_[layer.bottoms[0]] == static_cast<int>(i)) blobs[layer.bottoms[0]].reset();
      continue;
    }
    const auto layer_start = std::chrono::steady_clock::now();
    const ops::DnnlOp* dnnl_op = dnnl_ops_[i].get();
    // oneDNN ops take any layout; the reference kernels read plain tensors.
    if (dnnl_op == nullptr) {
      for (int b : layer.bottoms) {
        if (blobs[b] && blobs[b]->block != 0) {
          // Converted where it is stored, so readers sharing it (Split) convert once.
          Result<Tensor> plain = ops::ToPlain(*blobs[b]);
          if (!plain.ok()) return plain.status();
          *blobs[b] = std::move(plain).value();
        }
      }
    }
    std::vector<const Tensor*> inputs;
    for (int b : layer.bottoms) {
      if (!blobs[b]) return InternalError(model_.name + ": blob " + model_.graph.blob_names[b] + " missing");
      inputs.push_back(&*blobs[b]);
    }
    // Input 0 may be overwritten when this layer is its last reader and no other
    // blob shares it (Split), and it is not also another input of the layer.
    const int first = layer.bottoms.empty() ? -1 : layer.bottoms[0];
    const bool first_is_free = first >= 0 && first != output_blob_ && last_use_[first] == static_cast<int>(i) &&
                               blobs[first].use_count() == 1 &&
                               std::count(layer.bottoms.begin(), layer.bottoms.end(), first) == 1;
    Result<std::vector<Tensor>> outputs = std::vector<Tensor>();
    if (dnnl_op != nullptr) {
      Result<Tensor> out = dnnl_op->Run(inputs, blocked_output_[i], first_is_free ? blobs[first].get() : nullptr);
      if (out.ok()) {
        outputs->push_back(std::move(out).value());
      } else {
        outputs = out.status();
      }
    } else if (layer.type == "PReLU" && first_is_free) {
      // The reference PReLU in place: no copy of a large map.
      Status applied = ops::PReluInPlace(blobs[first].get(), model_.weights[i]);
      if (applied.ok()) {
        outputs->push_back(std::move(*blobs[first]));
      } else {
        outputs = applied;
      }
    } else {
      outputs = ops::ForwardLayer(layer, model_.weights[i], inputs);
    }
    if (!outputs.ok()) {
      return Status(outputs.status().code(),
                    model_.name + ": layer '" + layer.name + "' (" + layer.type + "): " + outputs.status().message());
    }
    if (stats != nullptr) stats->ms_by_layer_type[layer.type] += MillisSince(layer_start);
    if (stats != nullptr) stats->peak_live_bytes = std::max(stats->peak_live_bytes, LiveBytes(blobs, *outputs));
    if (stats != nullptr && (layer.type == "Convolution" || layer.type == "Deconvolution")) {
      const Tensor& in = *inputs[0];
      const Tensor& out = (*outputs)[0];
      const uint64_t kw = static_cast<uint64_t>(layer.params.GetInt(1, 0));
      const uint64_t kh = static_cast<uint64_t>(layer.params.GetInt(11, static_cast<int>(kw)));
      const uint64_t positions = layer.type == "Convolution" ? out.plane() : in.plane();
      stats->conv_flops += 2 * kw * kh * static_cast<uint64_t>(in.c) * static_cast<uint64_t>(out.c) * positions;
    }
    for (int b : layer.bottoms) {
      if (last_use_[b] == static_cast<int>(i) && b != output_blob_) blobs[b].reset();
    }
    for (size_t t = 0; t < layer.tops.size(); ++t) {
      blobs[layer.tops[t]] = std::make_shared<Tensor>(std::move((*outputs)[t]));
    }
  }
  if (!blobs[output_blob_]) return InternalError(model_.name + ": output blob was never produced");
  // The output is this run's alone unless the graph split it; copy only then.
  std::shared_ptr<Tensor> out = std::move(blobs[output_blob_]);
  if (out->block != 0) return ops::ToPlain(*out);
  return out.use_count() == 1 ? std::move(*out) : Tensor(*out);
}

}  // namespace tessera::engine
