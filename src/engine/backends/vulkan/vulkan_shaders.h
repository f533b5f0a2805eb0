// The Vulkan backend's compute shaders (shaders/*.comp), compiled to SPIR-V by
// glslc at build time and embedded by cmake/EmbedSpirv.cmake: no shader
// compiler and no shader file at run time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace tessera::engine::vulkan {

// One per shader, in the order CMakeLists.txt's VULKAN_SHADERS lists them.
enum class ShaderId : uint8_t {
  kConv2d,
  kDeconv2d,
  kElementwise,
  kCopyBox,
  kInterp,
  kPixelShuffle,
  kChannelScale,
  kGlobalPool,
  kInnerProduct,
  kBicubic,
  kGatherTile,
  kAddNearest,
  kConv3x3,
  kConv1x1,
  kPlaceTile,
  kCount
};

// A shader and the storage type of the activations it reads and writes: each
// shader is compiled twice (shaders/storage.glsl). Explicit, so that a call
// site cannot dispatch the fp32 variant on fp16 tensors by omission.
struct ShaderRef {
  ShaderId id = ShaderId::kCount;
  bool fp16 = false;
  constexpr ShaderRef(ShaderId shader, bool fp16_storage) : id(shader), fp16(fp16_storage) {}
  // Index into EmbeddedShaders(): every fp32 variant, then every fp16 one.
  constexpr size_t index() const { return static_cast<size_t>(id) + (fp16 ? static_cast<size_t>(ShaderId::kCount) : 0); }
};
inline constexpr size_t kShaderVariantCount = 2 * static_cast<size_t>(ShaderId::kCount);

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

// Every embedded shader, indexed by ShaderRef::index().
std::span<const SpirvShader> EmbeddedShaders();

}  // namespace tessera::engine::vulkan
