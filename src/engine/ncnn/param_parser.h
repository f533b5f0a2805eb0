// Parser for ncnn's text `.param` graph format:
//
//   7767517
//   <layer_count> <blob_count>
//   <Type> <name> <bottom_count> <top_count> <bottoms...> <tops...> <id>=<value> ...
//
// Values are integers or floats; an id of -23300-k marks parameter k as an array,
// written "count,v1,v2,...". Any input gets a clear error naming the file, the
// line and the layer, never a crash (fuzzed: fuzz/fuzz_param_parser.cpp).
#pragma once

#include <string_view>

#include "engine/ncnn/model_graph.h"
#include "util/status.h"

namespace tessera::engine::ncnn {

inline constexpr int kParamMagic = 7767517;
inline constexpr int kArrayKeyBase = -23300;
// Limits that keep hostile files from costing memory or time.
inline constexpr int kMaxLayers = 100000;
inline constexpr int kMaxBlobs = 100000;
inline constexpr int kMaxLayerIo = 1000;      // bottoms or tops of one layer
inline constexpr int kMaxArrayLength = 4096;  // elements of one array parameter

// `file_name` only labels error messages.
Result<ModelGraph> ParseParam(std::string_view text, std::string_view file_name);

}  // namespace tessera::engine::ncnn
