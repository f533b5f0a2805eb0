// The ncnn layer types the engine executes, as a value: the parser (and the plan
// cache's decoder) sets a layer's kind once from its type name, so no code past
// loading compares type strings. The table of what each kind is and needs is in
// layer_table.h.
#pragma once

#include <cstdint>

namespace tessera::engine::ncnn {

enum class LayerKind : uint8_t {
  kUnknown,  // a type the engine does not execute; the model checker refuses it
  kInput,
  kSplit,
  kConvolution,
  kDeconvolution,
  kPRelu,
  kEltwise,
  kBinaryOp,
  kScale,
  kConcat,
  kCrop,
  kInterp,
  kPixelShuffle,
  kPooling,
  kInnerProduct,
};

}  // namespace tessera::engine::ncnn
