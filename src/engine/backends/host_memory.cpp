#include "engine/backends/host_memory.h"

#include <unistd.h>

#include "engine/buffer_pool.h"
#include "util/process_memory.h"

namespace tessera::engine {

BackendMemory ProbeHostMemory() {
  BackendMemory memory;
  const std::optional<uint64_t> free_bytes = AvailableMemoryBytes();
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  if (!free_bytes) return memory;
  memory.known = true;
  memory.free_bytes = *free_bytes;
  memory.total_bytes = pages > 0 && page_size > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size) : 0;
  return memory;
}

Result<Tensor> AllocateHostTensor(int dims, int c, int h, int w, Layout layout, DataType dtype) {
  if (dtype != DataType::kF32) return Status(StatusCode::kUnsupported, "host tensors are fp32");
  if (dims != 1 && dims != 3) return InvalidError("a tensor has 1 or 3 dimensions");
  if (c <= 0 || h <= 0 || w <= 0) return InvalidError("a tensor's sizes must be positive");
  if (dims == 1 && layout != Layout::kPlain) return InvalidError("1-D tensors are plain");
  Tensor t;
  t.dims = dims;
  t.c = dims == 3 ? c : 1;
  t.h = dims == 3 ? h : 1;
  t.w = w;
  t.layout = layout;
  try {
    t.data.assign(static_cast<size_t>(PaddedChannels(t.c, layout)) * t.h * t.w, 0.f);
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kOutOfMemory, "host memory exhausted");
  }
  return t;
}

void ReleaseHostCache() { ActivationPool().ReleaseAll(); }

}  // namespace tessera::engine
