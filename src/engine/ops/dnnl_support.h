// What the oneDNN ops share, inside src/engine/ops/ only (it exposes oneDNN's
// header): the CPU engine, a tensor's memory descriptor, layout conversion, the
// cache of compiled primitives, and the conversion of oneDNN's exceptions into
// Status values at each op's boundary.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/ncnn/model.h"
#include "engine/tensor.h"
#include "util/status.h"

namespace tessera::engine::ops {

// The one CPU engine of the process. Throws dnnl::error when oneDNN cannot start.
dnnl::engine& CpuEngine();

// oneDNN's tag for a layout: nchw, nhwc, nChw8c, nChw16c.
dnnl::memory::format_tag TagOf(Layout layout);

// The layout a primitive chose, when it is one of ours (a 4-D {1, c, h, w} desc).
std::optional<Layout> LayoutOfDesc(const dnnl::memory::desc& desc);

// A tensor as oneDNN sees it: a 3-D map is {1, c, h, w} in its layout's tag; a
// 1-D vector of n is {1, n, 1, 1} in nchw, so it broadcasts per channel
// against a map.
dnnl::memory::desc DescOf(const Tensor& t);

// Wraps a tensor's storage (no copy); the tensor must outlive the memory.
dnnl::memory MemoryOf(const Tensor& t);

// An empty tensor of the given shape and layout, storage sized for it
// (padding channels included, zeroed). 1-D tensors are always plain.
Tensor AllocateLike(int dims, int c, int h, int w, Layout layout);

// `t` in `layout` (only 3-D tensors have another layout than plain). A copy
// when the layout already matches is avoided by the callers, not here.
Tensor Relayout(const Tensor& t, Layout layout);

// Runs `primitive` on the CPU engine with `args` and waits for it.
void Execute(const dnnl::primitive& primitive, const std::unordered_map<int, dnnl::memory>& args);

// ncnn's built-in activation (params 9 and 10 of Convolution, Deconvolution,
// InnerProduct) as an eltwise post-op; false when the layer has none.
bool ActivationPostOp(const ncnn::ParamDict& p, dnnl::post_ops* ops);

// A oneDNN exception as a Status: kOutOfMemory for its out-of-memory status,
// kInternal otherwise, the message prefixed by `what`.
Status FromDnnlError(const dnnl::error& e, const std::string& what);

// Compiled primitives of one layer, keyed by what the inputs look like (their
// shapes and layouts): built once per key and kept, shared by concurrent runs.
template <typename Compiled>
class CompiledCache {
 public:
  using Key = std::vector<int>;
  // `build` may throw dnnl::error; nothing is cached then.
  Result<std::shared_ptr<const Compiled>> Get(const Key& key,
                                              const std::function<Result<std::shared_ptr<Compiled>>()>& build) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = entries_.find(key);
    if (found != entries_.end()) return std::shared_ptr<const Compiled>(found->second);
    Result<std::shared_ptr<Compiled>> made = build();
    if (!made.ok()) return made.status();
    entries_.emplace(key, *made);
    return std::shared_ptr<const Compiled>(std::move(made).value());
  }

 private:
  mutable std::mutex mutex_;
  mutable std::map<Key, std::shared_ptr<Compiled>> entries_;
};

// The key of a list of inputs: dims, c, h, w and layout of each.
std::vector<int> ShapeKey(const std::vector<const Tensor*>& inputs);

}  // namespace tessera::engine::ops
