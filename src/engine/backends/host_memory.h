// What the two CPU backends share: their tensors are host tensors from the
// buffer pool (engine/buffer_pool.h), their free memory is the machine's.
#pragma once

#include "engine/backend.h"

namespace tessera::engine {

// MemAvailable within the cgroup limit; unknown when it cannot be read.
BackendMemory ProbeHostMemory();

// A zeroed plain-or-other host tensor: the storage a layout needs (padding
// channels included). Only fp32 lives on the host.
Result<Tensor> AllocateHostTensor(int dims, int c, int h, int w, Layout layout, DataType dtype);

// Hands the buffer pool's cached blocks back to the system.
void ReleaseHostCache();

}  // namespace tessera::engine
