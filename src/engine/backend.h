// The one contract every compute backend meets (reference kernels, oneDNN, and
// the GPU backends that add files only): make an op for a layer or decline, say
// which layouts it reads and writes, own its memory (allocate, probe free bytes,
// give cached memory back) and move tensors between the host and its device.
// The graph executor runs on a Backend& and never names one.
//
// Thread-safety: MakeOp is called while an executor is built (one thread); an
// Op's Run, and every other Backend method, may be called from several threads
// at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/device_tiling.h"
#include "engine/layout.h"
#include "engine/ncnn/model.h"
#include "engine/tensor.h"
#include "util/status.h"

namespace tessera::engine {

// What one run of an op gets.
struct OpInputs {
  // The layer's bottoms in order, then the other bottoms of the layers fused
  // into it (Op::Fuse), each in a layout the op reads (Op::ReadsLayout).
  std::vector<const Tensor*> tensors;
  // Per input: the tensor itself when the caller gives up its storage (nobody
  // reads it after this op), so the op may write its output there; else null.
  std::vector<Tensor*> writable;
  // The layouts every reader of the output takes without a conversion. The op
  // writes one of them when it can; otherwise the executor converts after it.
  LayoutSet output_readers = LayoutSet::PlainOnly();
};

// What fusing a following layer into an op did.
struct Fusion {
  // The fused layer's inputs other than this op's output, in its bottom order;
  // they become extra inputs of this op (OpInputs::tensors, after its own).
  std::vector<int> extra_bottoms;
};

// One layer, prepared for one backend.
class Op {
 public:
  virtual ~Op() = default;

  // Runs the layer. Errors are values (kInvalid for inputs that can never work,
  // kOutOfMemory when the backend's memory is exhausted).
  virtual Result<Tensor> Run(const OpInputs& inputs) const = 0;

  // (optional) Whether input `index` is read in `layout` without converting it
  // first. Default: plain only.
  virtual bool ReadsLayout(size_t index, Layout layout) const {
    (void)index;
    return layout == Layout::kPlain;
  }

  // (optional) Absorbs `next` — the only reader of this op's output, reading it
  // as its input `slot` — so that both run as one pass over memory (an
  // activation or a residual sum as a convolution's post-op). Returns false,
  // changing nothing, when the pair cannot be fused. Called while the executor is
  // built, before any Run; `next` and `next_weights` outlive the op.
  virtual bool Fuse(const ncnn::LayerSpec& next, const ncnn::LayerWeights& next_weights, int slot, Fusion* fusion) {
    (void)next, (void)next_weights, (void)slot, (void)fusion;
    return false;
  }

  // (optional) What the op chose on its runs that another process on the same
  // backend fingerprint may reuse (e.g. a cuDNN algorithm), at most 256 bytes;
  // empty when nothing was chosen. Kept beside the plan (runtime/plan_choices.h).
  virtual std::string SavedChoice() const { return {}; }
  // Takes back a SavedChoice before the first run. The bytes come from a file:
  // an op checks them and ignores what it cannot use (it then chooses again).
  virtual void RestoreChoice(const std::string& saved) { (void)saved; }
};

// (optional) A whole run of a graph recorded once for one input shape and
// replayed after (Backend::BeginCapture; Vulkan: one command buffer whose
// every tensor sits at a fixed place of memory the recording keeps).
class RecordedRun {
 public:
  virtual ~RecordedRun() = default;
  // The recorded work on `input` (the shape and type recorded): the output, in
  // memory of its own. kUnavailable when the backend has taken the recording's
  // memory back (memory pressure, idle): record it again.
  virtual Result<Tensor> Replay(const Tensor& input) const = 0;
};

// A recording being made on the calling thread (Backend::BeginCapture): until
// Finish, or its destruction (which abandons it), the backend's ops record
// their work on this thread instead of running it, and the tensors they make
// live in memory the recording keeps.
class RunCapture {
 public:
  virtual ~RunCapture() = default;
  // What the recorded ops read as the graph's input (a replay copies its input there).
  virtual Tensor input() const = 0;
  // Ends the recording; `output` is the last op's result.
  virtual Result<std::shared_ptr<RecordedRun>> Finish(const Tensor& output) = 0;
};

struct BackendMemory {
  bool known = false;  // false: the backend cannot tell (the planner then uses its hints)
  uint64_t free_bytes = 0;
  uint64_t total_bytes = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // "reference", "onednn", "cuda": part of plan-cache keys and logs.
  virtual std::string name() const = 0;
  virtual Device device() const = 0;
  // What decides how this backend prepares a model on this machine (e.g. the
  // CPU ISA oneDNN uses): part of plan-cache keys.
  virtual std::string Fingerprint() const = 0;
  // How its feature maps are stored (--precision): said in descriptions and logs.
  virtual DataType storage_dtype() const { return DataType::kF32; }

  // The op for `layer`, or null when this backend cannot run it (the executor
  // then runs it on its fallback backend). `layer` and `weights` outlive the op.
  virtual std::unique_ptr<Op> MakeOp(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights) = 0;

  // Memory: what is free now, a tensor of a shape in a layout and type (values
  // unspecified but padding zero), and cached blocks handed back (after an
  // out-of-memory, before a retry).
  virtual BackendMemory ProbeMemory() const = 0;
  virtual Result<Tensor> Allocate(int dims, int c, int h, int w, Layout layout, DataType dtype) const = 0;
  virtual void ReleaseCachedMemory() const {}

  // Whether tensors of this backend are host tensors (Tensor::data) that
  // another host backend may read once in plain layout.
  virtual bool HostMemory() const = 0;
  // A plain fp32 host tensor onto this backend (moved through when nothing changes).
  virtual Result<Tensor> FromHost(Tensor host) const = 0;
  // This backend's tensor as a plain fp32 host tensor.
  virtual Result<Tensor> ToHost(const Tensor& t) const = 0;
  // The same values in another layout, on this backend.
  virtual Result<Tensor> Convert(const Tensor& t, Layout layout) const = 0;

  // Whether what the backend prepares on a layer's first run depends on the
  // tile's shape (oneDNN's primitives, cuDNN's algorithm choices). When not
  // (Vulkan: pipelines and weights only), ModelUpscaler::WarmUp runs the
  // smallest tile instead of a whole one.
  virtual bool PreparesPerShape() const { return true; }

  // (optional) Starts recording, on the calling thread, a run whose input is
  // shaped like `input` (GraphExecutor::RunOnBackend replays it for every later
  // input of that shape); null when this backend runs ops as they come.
  virtual Result<std::unique_ptr<RunCapture>> BeginCapture(const Tensor& input) const {
    (void)input;
    return std::unique_ptr<RunCapture>();
  }

  // (optional) Tiles cut and placed in the device's memory, several per batch
  // (engine/device_tiling.h); null: on the host, one at a time.
  virtual const DeviceTiling* tiling() const { return nullptr; }
};

}  // namespace tessera::engine
