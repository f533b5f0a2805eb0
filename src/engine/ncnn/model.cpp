#include "engine/ncnn/model.h"

#include <fstream>
#include <iterator>

#include "engine/ncnn/layer_table.h"
#include "engine/ncnn/param_parser.h"
#include "engine/ncnn/weight_reader.h"

namespace tessera::engine::ncnn {
namespace {

std::string Where(const LayerSpec& layer, const std::string& file) {
  return file + ":" + std::to_string(layer.line) + ": layer '" + layer.name + "' (" + layer.type + ")";
}

Status Unsupported(const LayerSpec& layer, const std::string& file, const std::string& what) {
  return {StatusCode::kUnsupported, Where(layer, file) + ": " + what};
}

}  // namespace

Status CheckLayerSupported(const LayerSpec& layer, const std::string& file) {
  const LayerInfo* info = InfoOf(layer.kind);
  if (info == nullptr) return Unsupported(layer, file, "layer type not supported");
  for (const auto& [id, value] : layer.params.all()) {
    if (!info->Honours(id)) return Unsupported(layer, file, "parameter " + std::to_string(id) + " is not supported");
  }
  const auto within = [](size_t n, Arity a) {
    return n >= static_cast<size_t>(a.min) && n <= static_cast<size_t>(a.max);
  };
  if (!within(layer.bottoms.size(), info->inputs) || !within(layer.tops.size(), info->outputs)) {
    return Unsupported(layer, file, "unexpected number of inputs or outputs");
  }
  if (info->check != nullptr) {
    const std::string refused = info->check(layer);
    if (!refused.empty()) return Unsupported(layer, file, refused);
  }
  return Status::Ok();
}

Result<Model> BuildModel(std::string name, std::string_view param_text, const std::string& param_file,
                         std::span<const uint8_t> bin_bytes, const std::string& bin_file) {
  Result<ModelGraph> graph = ParseParam(param_text, param_file);
  if (!graph.ok()) return graph.status();
  Model model;
  model.name = std::move(name);
  model.graph = std::move(graph).value();
  WeightReader reader(bin_bytes, bin_file);
  model.weights.resize(model.graph.layers.size());
  for (size_t i = 0; i < model.graph.layers.size(); ++i) {
    const LayerSpec& layer = model.graph.layers[i];
    Status supported = CheckLayerSupported(layer, param_file);
    if (!supported.ok()) return supported;
    LayerWeights& w = model.weights[i];
    const std::string label = "layer '" + layer.name + "' ";
    const WeightArrays arrays = WeightArraysOf(layer);
    auto read = [&](std::vector<float>* out, size_t count, WeightEncoding encoding, const char* what) -> Status {
      if (count == 0) return Status::Ok();
      Result<std::vector<float>> data = reader.Read(count, encoding, label + what);
      if (!data.ok()) return data.status();
      *out = std::move(data).value();
      return Status::Ok();
    };
    Status s = read(&w.weight, arrays.weight, arrays.weight_encoding, arrays.weight_name);
    if (s.ok()) s = read(&w.bias, arrays.bias, WeightEncoding::kRawFloat, "bias");
    if (!s.ok()) return s;
  }
  if (reader.offset() != reader.size()) {
    return InvalidError(bin_file + ": " + std::to_string(reader.size() - reader.offset()) +
                        " bytes left after the last layer's weights; the .bin does not belong to this .param");
  }
  return model;
}

Result<Model> LoadModel(const std::string& dir, const std::string& name) {
  const std::string param_file = dir + "/" + name + ".param";
  const std::string bin_file = dir + "/" + name + ".bin";
  std::ifstream param(param_file, std::ios::binary);
  if (!param) return Status(StatusCode::kNotFound, "model '" + name + "': cannot open " + param_file);
  std::string param_text((std::istreambuf_iterator<char>(param)), std::istreambuf_iterator<char>());
  std::ifstream bin(bin_file, std::ios::binary);
  if (!bin) return Status(StatusCode::kNotFound, "model '" + name + "': cannot open " + bin_file);
  std::vector<uint8_t> bin_bytes((std::istreambuf_iterator<char>(bin)), std::istreambuf_iterator<char>());
  return BuildModel(name, param_text, param_file, bin_bytes, bin_file);
}

}  // namespace tessera::engine::ncnn
