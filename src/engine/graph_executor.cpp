#include "engine/graph_executor.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "engine/ncnn/layer_params.h"
#include "engine/ncnn/layer_table.h"

namespace tessera::engine {
namespace {

// Input and Split: blobs the executor places or shares itself, no op.
bool GraphOnly(const ncnn::LayerSpec& layer) {
  const ncnn::LayerInfo* info = ncnn::InfoOf(layer.kind);
  return info != nullptr && info->graph_only;
}

}  // namespace

struct GraphExecutor::Step {
  enum class Kind { kInput, kSplit, kOp } kind = Kind::kOp;
  size_t layer = 0;        // the layer that names the step (the first of a fused chain)
  const Op* op = nullptr;  // kOp only
  int backend = 0;         // index into backends_
  std::vector<int> bottoms;
  std::vector<int> tops;
  LayoutSet output_readers = LayoutSet::PlainOnly();
  std::string name;  // layer types, '+'-joined when fused
  // Convolution and Deconvolution, for the FLOP count: kernel width x height,
  // and whether the kernel visits each output (else each input) position.
  uint64_t kernel_area = 0;
  bool flops_per_output = true;
};

GraphExecutor::GraphExecutor(const ncnn::Model& model, Backend& backend, Backend* fallback) : model_(model) {
  backends_.push_back(&backend);
  if (fallback != nullptr) backends_.push_back(fallback);
  Plan();
}

GraphExecutor::~GraphExecutor() = default;

void GraphExecutor::Plan() {
  const auto& layers = model_.graph.layers;
  const size_t blob_count = model_.graph.blob_names.size();
  ops_.resize(layers.size());
  std::vector<int> owner(layers.size(), 0);
  std::vector<int> producer(blob_count, -1);
  std::vector<std::vector<std::pair<size_t, int>>> layer_readers(blob_count);  // (layer, slot)
  for (size_t i = 0; i < layers.size(); ++i) {
    const ncnn::LayerSpec& layer = layers[i];
    for (int t : layer.tops) producer[t] = static_cast<int>(i);
    for (size_t k = 0; k < layer.bottoms.size(); ++k) layer_readers[layer.bottoms[k]].push_back({i, static_cast<int>(k)});
    if (layer.kind == ncnn::LayerKind::kInput) {
      if (input_blob_ < 0) input_blob_ = layer.tops[0];
      continue;
    }
    if (GraphOnly(layer)) continue;
    for (size_t b = 0; b < backends_.size() && ops_[i] == nullptr; ++b) {
      ops_[i] = backends_[b]->MakeOp(layer, model_.weights[i]);
      owner[i] = static_cast<int>(b);
    }
    if (ops_[i] == nullptr && plan_status_.ok()) {
      plan_status_ = Status(StatusCode::kUnsupported, "layer '" + layer.name + "' (" + layer.type + ") runs on no backend of " +
                                                          backends_[0]->device().Name());
    }
    if (layer.tops.size() != 1 && plan_status_.ok()) {
      plan_status_ = InvalidError("layer '" + layer.name + "' has " + std::to_string(layer.tops.size()) + " outputs");
    }
  }
  if (!layers.empty() && !layers.back().tops.empty()) output_blob_ = layers.back().tops[0];
  if (!plan_status_.ok()) return;

  // Steps in layer order; a layer that alone reads an op's output, and whose
  // other inputs already exist there, may be absorbed by that op.
  std::vector<bool> absorbed(layers.size(), false);
  for (size_t i = 0; i < layers.size(); ++i) {
    if (absorbed[i]) continue;
    const ncnn::LayerSpec& layer = layers[i];
    Step step;
    step.layer = i;
    step.bottoms = layer.bottoms;
    step.tops = layer.tops;
    step.name = layer.type;
    if (layer.kind == ncnn::LayerKind::kInput) {
      step.kind = Step::Kind::kInput;
    } else if (layer.kind == ncnn::LayerKind::kSplit) {
      step.kind = Step::Kind::kSplit;
    } else {
      step.op = ops_[i].get();
      step.backend = owner[i];
      if (layer.kind == ncnn::LayerKind::kConvolution || layer.kind == ncnn::LayerKind::kDeconvolution) {
        const ncnn::ConvParams k = ncnn::ConvParams::Read(layer.params);
        step.kernel_area = static_cast<uint64_t>(k.kw) * static_cast<uint64_t>(k.kh);
        step.flops_per_output = layer.kind == ncnn::LayerKind::kConvolution;
      }
      while (step.tops.size() == 1 && step.tops[0] != output_blob_ && layer_readers[step.tops[0]].size() == 1) {
        const int blob = step.tops[0];
        const auto [next, slot] = layer_readers[blob][0];
        const ncnn::LayerSpec& reader = layers[next];
        if (GraphOnly(reader) || absorbed[next] || reader.tops.size() != 1) break;
        if (std::count(reader.bottoms.begin(), reader.bottoms.end(), blob) != 1) break;
        const bool others_ready = std::all_of(reader.bottoms.begin(), reader.bottoms.end(), [&](int b) {
          return b == blob || producer[b] < static_cast<int>(i);
        });
        Fusion fusion;
        if (!others_ready || !ops_[i]->Fuse(reader, model_.weights[next], slot, &fusion)) break;
        absorbed[next] = true;
        ++fused_layers_;
        step.bottoms.insert(step.bottoms.end(), fusion.extra_bottoms.begin(), fusion.extra_bottoms.end());
        step.tops = reader.tops;
        step.name += "+" + reader.type;
      }
    }
    steps_.push_back(std::move(step));
  }

  last_use_.assign(blob_count, -1);
  std::vector<std::vector<std::pair<size_t, int>>> readers(blob_count);  // (step, slot)
  for (size_t s = 0; s < steps_.size(); ++s) {
    for (size_t k = 0; k < steps_[s].bottoms.size(); ++k) {
      last_use_[steps_[s].bottoms[k]] = static_cast<int>(s);
      readers[steps_[s].bottoms[k]].push_back({s, static_cast<int>(k)});
    }
  }
  // The layouts every reader of `blob` (through Splits) takes from a producer
  // on backend `from`: a reader on another device takes a transfer, which is
  // made from plain.
  std::function<LayoutSet(int, int)> readable = [&](int blob, int from) {
    if (blob == output_blob_) return LayoutSet::PlainOnly();
    LayoutSet set = LayoutSet::All();
    for (const auto& [s, slot] : readers[blob]) {
      const Step& reader = steps_[s];
      if (reader.kind == Step::Kind::kSplit) {
        for (int top : reader.tops) set = set.Intersect(readable(top, from));
        continue;
      }
      const bool shared_memory =
          reader.backend == from || (backends_[reader.backend]->HostMemory() && backends_[from]->HostMemory());
      if (!shared_memory) return LayoutSet::PlainOnly();
      LayoutSet takes;
      for (Layout l : kAllLayouts) {
        if (reader.op->ReadsLayout(slot, l)) takes = takes.With(l);
      }
      set = set.Intersect(takes);
    }
    return set.empty() ? LayoutSet::PlainOnly() : set;
  };
  for (Step& step : steps_) {
    if (step.kind == Step::Kind::kOp) step.output_readers = readable(step.tops[0], step.backend);
  }
}

std::string GraphExecutor::Describe() const {
  std::string text = backends_[0]->device().Name() + " " + backends_[0]->name();
  if (backends_[0]->storage_dtype() == DataType::kF16) text += " fp16";
  int fallback_layers = 0;
  for (const Step& step : steps_) fallback_layers += step.kind == Step::Kind::kOp && step.backend != 0;
  if (fallback_layers > 0) {
    text += " (+" + backends_[1]->name() + " for " + std::to_string(fallback_layers) +
            (fallback_layers == 1 ? " layer)" : " layers)");
  }
  return text;
}

namespace {

// Bytes held by the distinct live blobs (Split shares one tensor between several
// names) plus a layer's fresh output: the memory in use at that point of a run.
uint64_t LiveBytes(const std::vector<std::shared_ptr<Tensor>>& blobs, const Tensor& output) {
  std::vector<const Tensor*> seen;
  uint64_t bytes = 0;
  for (const auto& blob : blobs) {
    if (!blob || std::find(seen.begin(), seen.end(), blob.get()) != seen.end()) continue;
    seen.push_back(blob.get());
    bytes += blob->bytes();
  }
  return bytes + output.bytes();
}

// The first layout (plain first) that `op` reads as its input `slot`.
Layout FirstReadable(const Op& op, size_t slot) {
  for (Layout l : kAllLayouts) {
    if (op.ReadsLayout(slot, l)) return l;
  }
  return Layout::kPlain;
}

}  // namespace

bool GraphExecutor::RunsWhollyOnBackend() const {
  return std::none_of(steps_.begin(), steps_.end(),
                      [](const Step& step) { return step.kind == Step::Kind::kOp && step.backend != 0; });
}

std::vector<std::string> GraphExecutor::SavedChoices() const {
  std::vector<std::string> choices(ops_.size());
  for (size_t i = 0; i < ops_.size(); ++i) {
    if (ops_[i]) choices[i] = ops_[i]->SavedChoice();
  }
  return choices;
}

void GraphExecutor::RestoreChoices(const std::vector<std::string>& choices) {
  if (choices.size() != ops_.size()) return;
  for (size_t i = 0; i < ops_.size(); ++i) {
    if (ops_[i] && !choices[i].empty()) ops_[i]->RestoreChoice(choices[i]);
  }
}

Result<Tensor> GraphExecutor::Run(Tensor input, const Deadline& deadline, RunStats* stats) const {
  return RunSteps(std::move(input), true, deadline, stats);
}

Result<Tensor> GraphExecutor::RunOnBackend(Tensor input, const Deadline& deadline, RunStats* stats) const {
  if (stats == nullptr && plan_status_.ok() && RunsWhollyOnBackend()) {
    Result<std::optional<Tensor>> recorded = RunRecorded(input, deadline);
    if (!recorded.ok()) return recorded.status();
    if (recorded->has_value()) return std::move(**recorded);
  }
  return RunSteps(std::move(input), false, deadline, stats);
}

std::shared_ptr<RecordedRun> GraphExecutor::FindRecorded(const ShapeKey& key) const {
  std::lock_guard lock(recorded_mutex_);
  for (auto it = recorded_.begin(); it != recorded_.end(); ++it) {
    if (it->first != key) continue;
    recorded_.splice(recorded_.begin(), recorded_, it);
    return recorded_.front().second;
  }
  return nullptr;
}

Result<std::optional<Tensor>> GraphExecutor::RunRecorded(const Tensor& input, const Deadline& deadline) const {
  const ShapeKey key{input.dims, input.n, input.c, input.h, input.w, static_cast<int>(input.dtype)};
  // A recording whose memory the backend took back is made again, once.
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::shared_ptr<RecordedRun> recorded = FindRecorded(key);
    if (!recorded) {
      Result<std::unique_ptr<RunCapture>> capture = backends_[0]->BeginCapture(input);
      if (!capture.ok()) return capture.status();
      if (*capture == nullptr) return std::optional<Tensor>();
      // The ops record rather than run; the replay below runs them.
      Result<Tensor> output = RunSteps((*capture)->input(), false, deadline, nullptr);
      if (!output.ok()) return output.status();
      Result<std::shared_ptr<RecordedRun>> finished = (*capture)->Finish(*output);
      if (!finished.ok()) return finished.status();
      recorded = std::move(finished).value();
      std::lock_guard lock(recorded_mutex_);
      recorded_.emplace_front(key, recorded);
      if (recorded_.size() > kRecordedShapes) recorded_.pop_back();
    }
    Result<Tensor> output = recorded->Replay(input);
    if (output.ok()) return std::optional<Tensor>(std::move(output).value());
    if (output.status().code() != StatusCode::kUnavailable) return output.status();
    std::lock_guard lock(recorded_mutex_);
    recorded_.remove_if([&](const auto& entry) { return entry.second == recorded; });
  }
  return std::optional<Tensor>();  // taken back twice in a row: run it as it comes
}

Result<Tensor> GraphExecutor::RunSteps(Tensor input, bool output_to_host, const Deadline& deadline,
                                       RunStats* stats) const {
  if (!plan_status_.ok()) return Status(plan_status_.code(), model_.name + ": " + plan_status_.message());
  if (input_blob_ < 0 || output_blob_ < 0) return InvalidError(model_.name + ": model has no input or output blob");
  // Blobs are shared: Split hands the same one to each reader. A blob changes in
  // place only when this step is its sole owner and last reader, or when it is
  // converted (same values, so every sharer may see it).
  std::vector<std::shared_ptr<Tensor>> blobs(model_.graph.blob_names.size());
  std::vector<int> owner(blobs.size(), 0);
  const auto& layers = model_.graph.layers;
  for (size_t s = 0; s < steps_.size(); ++s) {
    const Step& step = steps_[s];
    const ncnn::LayerSpec& layer = layers[step.layer];
    if (deadline.Expired()) return Status(StatusCode::kTimeout, "cancelled: request deadline passed");
    if (step.kind == Step::Kind::kInput) {
      // RunOnBackend's input is the backend's already (output_to_host false).
      Result<Tensor> on_backend =
          output_to_host ? backends_[0]->FromHost(std::move(input)) : Result<Tensor>(std::move(input));
      if (!on_backend.ok()) return on_backend.status();
      blobs[step.tops[0]] = std::make_shared<Tensor>(std::move(on_backend).value());
      owner[step.tops[0]] = 0;
      continue;
    }
    if (step.kind == Step::Kind::kSplit) {
      if (!blobs[step.bottoms[0]]) return InternalError(model_.name + ": Split input missing");
      for (int t : step.tops) {
        blobs[t] = blobs[step.bottoms[0]];
        owner[t] = owner[step.bottoms[0]];
      }
      if (last_use_[step.bottoms[0]] == static_cast<int>(s)) blobs[step.bottoms[0]].reset();
      continue;
    }
    const auto layer_start = std::chrono::steady_clock::now();
    Backend& backend = *backends_[step.backend];
    OpInputs run;
    run.output_readers = step.output_readers;
    for (size_t k = 0; k < step.bottoms.size(); ++k) {
      const int b = step.bottoms[k];
      if (!blobs[b]) return InternalError(model_.name + ": blob " + model_.graph.blob_names[b] + " missing");
      Backend& from = *backends_[owner[b]];
      const bool shared_memory = &from == &backend || (from.HostMemory() && backend.HostMemory());
      Result<Tensor> converted = Status::Ok();
      if (!shared_memory) {
        // Another device: through the host. Stored where it is, so sharers convert once.
        Result<Tensor> host = from.ToHost(*blobs[b]);
        converted = host.ok() ? backend.FromHost(std::move(host).value()) : host.status();
      } else if (!step.op->ReadsLayout(k, blobs[b]->layout)) {
        converted = from.Convert(*blobs[b], FirstReadable(*step.op, k));
      } else {
        continue;
      }
      if (!converted.ok()) {
        return Status(converted.status().code(), model_.name + ": input of layer '" + layer.name + "': " +
                                                     converted.status().message());
      }
      *blobs[b] = std::move(converted).value();
      // Every Split sharer of the blob now holds it where this step's backend
      // does: a later reader on the first backend must convert it back, not
      // take a host tensor for one of its device's.
      for (size_t other = 0; other < blobs.size(); ++other) {
        if (blobs[other] == blobs[b]) owner[other] = step.backend;
      }
      if (stats != nullptr) ++stats->conversions;
    }
    for (size_t k = 0; k < step.bottoms.size(); ++k) {
      const int b = step.bottoms[k];
      run.tensors.push_back(blobs[b].get());
      // Given up when this step is its last reader, nobody shares it, and it is
      // not read twice by this step.
      const bool free = b != output_blob_ && last_use_[b] == static_cast<int>(s) && blobs[b].use_count() == 1 &&
                        std::count(step.bottoms.begin(), step.bottoms.end(), b) == 1;
      run.writable.push_back(free ? blobs[b].get() : nullptr);
    }
    Result<Tensor> output = step.op->Run(run);
    if (!output.ok()) {
      return Status(output.status().code(),
                    model_.name + ": layer '" + layer.name + "' (" + step.name + "): " + output.status().message());
    }
    if (stats != nullptr) {
      stats->ms_by_layer_type[step.name] += MillisSince(layer_start);
      stats->peak_live_bytes = std::max(stats->peak_live_bytes, LiveBytes(blobs, *output));
      if (step.kernel_area != 0) {
        const Tensor& in = *run.tensors[0];
        const uint64_t positions = step.flops_per_output ? output->plane() : in.plane();
        stats->conv_flops +=
            2 * step.kernel_area * static_cast<uint64_t>(in.c) * static_cast<uint64_t>(output->c) * positions;
      }
    }
    for (int b : step.bottoms) {
      if (last_use_[b] == static_cast<int>(s) && b != output_blob_) blobs[b].reset();
    }
    blobs[step.tops[0]] = std::make_shared<Tensor>(std::move(output).value());
    owner[step.tops[0]] = step.backend;
  }
  if (!blobs[output_blob_]) return InternalError(model_.name + ": output blob was never produced");
  // The output is this run's alone unless the graph split it; copy only then.
  std::shared_ptr<Tensor> out = std::move(blobs[output_blob_]);
  Backend& from = *backends_[owner[output_blob_]];
  if (!output_to_host) return out.use_count() == 1 ? std::move(*out) : Tensor(*out);
  if (out->on_device() || out->layout != Layout::kPlain) return from.ToHost(*out);
  return out.use_count() == 1 ? std::move(*out) : Tensor(*out);
}

}  // namespace tessera::engine
