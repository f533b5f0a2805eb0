// The push constants of each compute shader (shaders/*.comp), field for field
// in the shaders' order: every field is a 4-byte scalar, so std430's layout of
// the push-constant block is the C++ struct's. Kept under the 128 bytes every
// Vulkan device guarantees.
#pragma once

#include <cstdint>

#include "engine/backends/vulkan/vulkan_shaders.h"

namespace tessera::engine::vulkan {

// conv2d.comp, deconv2d.comp, conv3x3.comp and conv1x1.comp (shaders/conv_common.glsl).
struct ConvPush {
  uint32_t total = 0;  // invocations
  int32_t n = 0, in_c = 0, in_h = 0, in_w = 0;
  int32_t out_c = 0, out_h = 0, out_w = 0;
  int32_t kw = 0, kh = 0, dw = 1, dh = 1, sw = 1, sh = 1;
  int32_t pad_left = 0, pad_top = 0;
  int32_t has_bias = 0;
  int32_t activation = 0;
  float act_a = 0.f, act_b = 0.f;
  int32_t post0 = 0, post1 = 0;  // 0 none, 1 PReLU, 2 residual sum
  int32_t slope_count = 0;
  int32_t other_vector = 0;
  float self_coeff = 1.f, other_coeff = 1.f;
};
// conv2d.comp's output channels per invocation (its kChannels).
inline constexpr int kConvChannelGroup = 4;
// conv3x3.comp and conv1x1.comp (shaders/conv_block.glsl): columns and output
// channels per invocation (their XB and OCB).
inline constexpr int kConvBlockColumns = 8;
inline constexpr int kConvBlockChannels = 8;
inline constexpr int kConvPostPReLU = 1;
inline constexpr int kConvPostSum = 2;
inline constexpr int kMaxConvPostOps = 2;

// elementwise.comp.
struct ElementwisePush {
  uint32_t total = 0;
  int32_t op = 0;       // 0..3 BinaryOp's add, sub, mul, div; then the ones below
  int32_t operand = 0;  // kOperand*
  uint32_t plane = 1;
  uint32_t channels = 1;
  float coeff_a = 1.f, coeff_b = 1.f;
  float scalar = 0.f;
};
inline constexpr int kElementwisePReLU = 4;
inline constexpr int kElementwiseSum = 5;
inline constexpr int kElementwiseProduct = 6;
inline constexpr int kElementwiseMax = 7;
inline constexpr int kOperandSameShape = 0;
inline constexpr int kOperandVectorSecond = 1;
inline constexpr int kOperandScalar = 2;
inline constexpr int kOperandVectorFirst = 3;

// copy_box.comp.
struct CopyBoxPush {
  uint32_t total = 0;
  int32_t box_c = 0, box_h = 0, box_w = 0;
  int32_t src_c = 0, src_h = 0, src_w = 0, src_c0 = 0, src_y0 = 0, src_x0 = 0;
  int32_t dst_c = 0, dst_h = 0, dst_w = 0, dst_c0 = 0, dst_y0 = 0, dst_x0 = 0;
};

// interp.comp.
struct InterpPush {
  uint32_t total = 0;
  int32_t c = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  int32_t bilinear = 0;
  float inv_y = 1.f, inv_x = 1.f;
  float ratio_y = 1.f, ratio_x = 1.f;
};

// pixel_shuffle.comp.
struct PixelShufflePush {
  uint32_t total = 0;
  int32_t out_c = 0, in_h = 0, in_w = 0, r = 1;
};

// channel_scale.comp (Scale).
struct ChannelScalePush {
  uint32_t total = 0;
  uint32_t plane = 1;
  uint32_t channels = 1;
  int32_t has_bias = 0;
  int32_t own_scales = 0;  // 1: the layer's fp32 scales (binding 4), 0: a blob's (binding 1)
};

// global_pool.comp: one 64-wide workgroup per plane.
struct GlobalPoolPush {
  uint32_t total = 0;  // 64 * planes
  uint32_t planes = 0;
  uint32_t plane = 0;
};
inline constexpr uint32_t kPoolGroupSize = 64;  // global_pool.comp's local_size_x

// inner_product.comp.
struct InnerProductPush {
  uint32_t total = 0;
  uint32_t inputs = 0;
  uint32_t num_output = 0;
  int32_t has_bias = 0;
  int32_t activation = 0;
  float act_a = 0.f, act_b = 0.f;
};

// bicubic.comp (bicubic Interp).
struct BicubicPush {
  uint32_t total = 0;
  int32_t in_h = 0, in_w = 0, out_h = 0, out_w = 0;
};
inline constexpr int kBicubicTapFloats = 5;  // the first source index, then 4 weights

// gather_tile.comp (DeviceTiling::GatherTiles, one dispatch per tile).
struct GatherTilePush {
  uint32_t total = 0;
  int32_t c = 0, image_h = 0, image_w = 0, h = 0, w = 0;
  int32_t x0 = 0, y0 = 0;
  int32_t item = 0;
  int32_t reflect = 0;
};

// add_nearest.comp (DeviceTiling::AddNearestInput).
struct AddNearestPush {
  uint32_t total = 0;
  int32_t in_h = 0, in_w = 0, scale = 1;
};

// Bindings and push-constant bytes of each shader, by ShaderId.
inline ShaderInterface InterfaceOf(ShaderId id) {
  switch (id) {
    case ShaderId::kConv2d:
    case ShaderId::kDeconv2d:
    case ShaderId::kConv3x3:
    case ShaderId::kConv1x1: return {6, sizeof(ConvPush)};
    case ShaderId::kElementwise: return {4, sizeof(ElementwisePush)};
    case ShaderId::kCopyBox:
    case ShaderId::kPlaceTile: return {2, sizeof(CopyBoxPush)};
    case ShaderId::kInterp: return {2, sizeof(InterpPush)};
    case ShaderId::kPixelShuffle: return {2, sizeof(PixelShufflePush)};
    case ShaderId::kChannelScale: return {5, sizeof(ChannelScalePush)};
    case ShaderId::kGlobalPool: return {2, sizeof(GlobalPoolPush)};
    case ShaderId::kInnerProduct: return {4, sizeof(InnerProductPush)};
    case ShaderId::kBicubic: return {3, sizeof(BicubicPush)};
    case ShaderId::kGatherTile: return {2, sizeof(GatherTilePush)};
    case ShaderId::kAddNearest: return {2, sizeof(AddNearestPush)};
    case ShaderId::kCount: break;
  }
  return {};
}

static_assert(sizeof(ConvPush) <= 128 && sizeof(ElementwisePush) <= 128 && sizeof(CopyBoxPush) <= 128 &&
              sizeof(InterpPush) <= 128 && sizeof(PixelShufflePush) <= 128 && sizeof(ChannelScalePush) <= 128 &&
              sizeof(GlobalPoolPush) <= 128 && sizeof(InnerProductPush) <= 128 && sizeof(BicubicPush) <= 128 &&
              sizeof(GatherTilePush) <= 128 && sizeof(AddNearestPush) <= 128);

}  // namespace tessera::engine::vulkan
