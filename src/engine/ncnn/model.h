// An ncnn model loaded and checked: its graph, and each layer's weights in fp32.
// Loading refuses, with the file, line and layer named, any layer type,
// parameter or parameter value the engine does not execute, so a model that
// loads is a model the engine can run.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/ncnn/model_graph.h"
#include "util/status.h"

namespace tessera::engine::ncnn {

// The arrays a layer reads from the .bin, in fp32; their sizes follow from the
// layer's parameters by one rule (WeightArraysOf in layer_table.h).
// Convolution, Deconvolution, InnerProduct: weight (+ bias when bias_term);
// PReLU: weight holds the slopes; Scale: weight holds the scales unless they come
// from a second input blob, bias when bias_term. Other layers have none.
struct LayerWeights {
  std::vector<float> weight;
  std::vector<float> bias;
};

struct Model {
  std::string name;
  ModelGraph graph;
  std::vector<LayerWeights> weights;  // one per layer, same order as graph.layers
};

// Checks one layer's type, parameters and values against what the engine runs.
Status CheckLayerSupported(const LayerSpec& layer, const std::string& file_name);

// Parses `param_text`, checks every layer, then reads the weights from
// `bin_bytes` in layer order; the .bin must be consumed exactly.
Result<Model> BuildModel(std::string name, std::string_view param_text, const std::string& param_file,
                         std::span<const uint8_t> bin_bytes, const std::string& bin_file);

// Reads `<dir>/<name>.param` and `<dir>/<name>.bin`.
Result<Model> LoadModel(const std::string& dir, const std::string& name);

}  // namespace tessera::engine::ncnn
