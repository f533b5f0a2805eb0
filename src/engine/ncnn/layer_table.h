// One entry per layer type the engine executes (in the spirit of ncnn's
// layer.h + layer_registry.h): its ncnn name, the parameter ids it honours, how
// many blobs it reads and writes, the parameter values it refuses, the weight
// arrays it reads from the .bin and their sizes, and what the executor may
// assume of it. The model checker, the .bin reader, the plan cache's decoder and
// every backend's op factory read this table; past loading no code compares
// type strings (a layer's kind is set once, by ncnn::KindOf).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "engine/ncnn/layer_kind.h"
#include "engine/ncnn/model_graph.h"
#include "engine/ncnn/weight_reader.h"

namespace tessera::engine::ncnn {

// How many blobs a layer reads (or writes): from min to max, inclusive.
struct Arity {
  int min = 0;
  int max = 0;
};

// The arrays a layer reads from the .bin, in this order: `weight` elements
// stored as `weight_encoding`, then `bias` raw fp32 elements. Zero: not read.
struct WeightArrays {
  size_t weight = 0;
  WeightEncoding weight_encoding = WeightEncoding::kRawFloat;
  const char* weight_name = "weight";  // in error messages: "layer 'x' <weight_name>"
  size_t bias = 0;
};

struct LayerInfo {
  LayerKind kind = LayerKind::kUnknown;
  std::string_view type;  // ncnn's name, as .param files spell it
  uint32_t params = 0;    // bit i set: parameter id i is honoured; any other id is refused
  Arity inputs;
  Arity outputs;
  // Input and Split: the executor places or shares their blobs itself; no
  // backend makes an op for them and no op absorbs them.
  bool graph_only = false;
  // The parameter values of a layer the engine does not execute, as a message;
  // empty when it runs. Called after the ids and the arity were checked.
  std::string (*check)(const LayerSpec& layer) = nullptr;
  // The weight arrays of a layer that passed `check`; null: it reads none.
  WeightArrays (*weights)(const ParamDict& params) = nullptr;

  bool Honours(int id) const { return id >= 0 && id < 32 && ((params >> id) & 1u) != 0; }
};

// Every entry, in LayerKind order (kUnknown has none).
std::span<const LayerInfo> LayerTable();
// The kind of an ncnn type name; kUnknown for one the engine does not execute.
LayerKind KindOf(std::string_view type);
// The entry of a kind; null for kUnknown.
const LayerInfo* InfoOf(LayerKind kind);
// The one weight-size rule, for the .bin reader and the plan cache alike: what
// a checked layer reads (nothing for kinds without weights or kUnknown).
WeightArrays WeightArraysOf(const LayerSpec& layer);

}  // namespace tessera::engine::ncnn
