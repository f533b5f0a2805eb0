// The Vulkan backend's compute shaders (shaders/*.comp), compiled to SPIR-V by
// glslc at build time and embedded by cmake/EmbedSpirv.cmake: no shader
// compiler and no shader file at run time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace tessera::engine::vulkan {

// One per shader, in the order CMakeLists.txt's VULKAN_SHADERS lists them.
enum class ShaderId : uint8_t { kConv2d, kDeconv2d, kElementwise, kCopyBox, kInterp, kPixelShuffle,
                              kConv3x3, kConv1x1, kCount };

// How many storage buffers each shader binds (bindings 0..n-1) and the bytes of
// its push constants: the descriptor set and pipeline layouts built from them.
struct ShaderInterface {
  int buffers = 0;
  uint32_t push_bytes = 0;
};

struct SpirvShader {
  const char* name;
  const uint32_t* words;
  size_t word_count;
};

// Every embedded shader, indexed by ShaderId.
std::span<const SpirvShader> EmbeddedShaders();

}  // namespace tessera::engine::vulkan
