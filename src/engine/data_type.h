// Element types of tensors. Host tensors are fp32; a device backend may store
// fp16 (accumulating in fp32) where the user's --precision allows it. On its own
// so that device code (C++17 under nvcc) can name it.
#pragma once

#include <cstdint>

namespace tessera::engine {

enum class DataType : uint8_t { kF32, kF16 };

}  // namespace tessera::engine
