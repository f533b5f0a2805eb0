// What the Vulkan backend's layer ops share (vulkan_ops.cpp,
// vulkan_layer_ops.cpp): checking that the inputs are this backend's tensors,
// one dispatch of a shader in the backend's storage type, an output that takes
// over an input's storage when the caller gave it up, and host values
// uploaded once.
#pragma once

#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "engine/backends/vulkan/vulkan_backend.h"

namespace tessera::engine::vulkan {

// kInvalid unless every input is a tensor of `backend`, in its storage type.
inline Status CheckInputs(const VulkanBackend& backend, const ncnn::LayerSpec& layer, const OpInputs& run) {
  for (const Tensor* t : run.tensors) {
    if (SpanOf(*t).buffer == VK_NULL_HANDLE || t->dtype != backend.dtype()) {
      return InvalidError(layer.type + ": input is not a tensor of this Vulkan backend");
    }
  }
  return Status::Ok();
}

// `shader`'s variant for the backend's storage type (fp32 or fp16), one
// invocation per value of `push.total`.
template <typename Push>
Status Dispatch(const VulkanBackend& backend, ShaderId shader, std::span<const BufferSpan> buffers, const Push& push) {
  return backend.gpu().Run([&](CommandRecorder& r) {
    return r.Dispatch(backend.Shader(shader), buffers, &push, sizeof(push), push.total);
  });
}

inline bool SameShape(const Tensor& a, const Tensor& b) {
  return a.dims == b.dims && a.n == b.n && a.c == b.c && a.h == b.h && a.w == b.w;
}

// Input `index`'s storage when the caller gave it up (a shader that reads and
// writes one value per invocation runs in place), else a new tensor of
// `like`'s shape. Take the input's span before: this may move it out.
inline Result<Tensor> OutputLike(const VulkanBackend& backend, const Tensor& like, const OpInputs& run,
                                 size_t index) {
  // Its memory must be its own: an identity Interp hands its input's buffer on.
  if (index < run.writable.size() && run.writable[index] != nullptr && SameShape(*run.writable[index], like) &&
      run.writable[index]->device.use_count() == 1) {
    return std::move(*run.writable[index]);
  }
  return backend.NewTensor(like.dims, like.n, like.c, like.h, like.w);
}

// Host values on the device, uploaded on the first run that needs them.
class UploadedOnce {
 public:
  Result<BufferSpan> Get(const VulkanBackend& backend, const std::vector<float>& values) const {
    std::lock_guard lock(mutex_);
    if (!block_) {
      Result<gpu::DeviceBlock> block = backend.Upload(values);
      if (!block.ok()) return block.status();
      block_ = std::move(block).value();
    }
    return SpanOf(block_);
  }

 private:
  mutable std::mutex mutex_;
  mutable gpu::DeviceBlock block_;
};

}  // namespace tessera::engine::vulkan
