#include "engine/ncnn/model.h"

#include <fstream>
#include <iterator>
#include <map>
#include <set>

#include "engine/ncnn/param_parser.h"
#include "engine/ncnn/weight_reader.h"

namespace tessera::engine::ncnn {
namespace {

// Parameter ids the engine honours, per layer type (ncnn's numbering).
const std::map<std::string, std::set<int>>& SupportedParams() {
  static const std::map<std::string, std::set<int>> table = {
      {"Input", {0, 1, 2}},
      {"Convolution", {0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 14, 15, 16}},
      {"Deconvolution", {0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19}},
      {"PReLU", {0}},
      {"Split", {}},
      {"Concat", {0}},
      {"Eltwise", {0, 1}},
      {"BinaryOp", {0, 1, 2}},
      {"Interp", {0, 1, 2, 3, 4, 6}},
      {"PixelShuffle", {0, 1}},
      {"Pooling", {0, 4}},
      {"InnerProduct", {0, 1, 2, 9, 10}},
      {"Scale", {0, 1}},
      {"Crop", {0, 1, 2, 3, 4, 5, 9, 10, 11}},
  };
  return table;
}

std::string Where(const LayerSpec& layer, const std::string& file) {
  return file + ":" + std::to_string(layer.line) + ": layer '" + layer.name + "' (" + layer.type + ")";
}

Status Unsupported(const LayerSpec& layer, const std::string& file, const std::string& what) {
  return {StatusCode::kUnsupported, Where(layer, file) + ": " + what};
}

bool OneOf(int v, std::initializer_list<int> allowed) {
  for (int a : allowed) {
    if (v == a) return true;
  }
  return false;
}

}  // namespace

Status CheckLayerSupported(const LayerSpec& layer, const std::string& file) {
  auto known = SupportedParams().find(layer.type);
  if (known == SupportedParams().end()) return Unsupported(layer, file, "layer type not supported");
  for (const auto& [id, value] : layer.params.all()) {
    if (known->second.count(id) == 0) {
      return Unsupported(layer, file, "parameter " + std::to_string(id) + " is not supported");
    }
  }
  const ParamDict& p = layer.params;
  const std::string& t = layer.type;
  auto expect_io = [&](size_t bottoms_min, size_t bottoms_max, size_t tops_min, size_t tops_max) -> Status {
    if (layer.bottoms.size() < bottoms_min || layer.bottoms.size() > bottoms_max || layer.tops.size() < tops_min ||
        layer.tops.size() > tops_max) {
      return Unsupported(layer, file, "unexpected number of inputs or outputs");
    }
    return Status::Ok();
  };
  Status io;
  if (t == "Input") {
    io = expect_io(0, 0, 1, 1);
  } else if (t == "Split") {
    io = expect_io(1, 1, 1, 1000);
  } else if (t == "Concat") {
    io = expect_io(1, 1000, 1, 1);
  } else if (t == "Eltwise") {
    io = expect_io(2, 1000, 1, 1);
  } else if (t == "BinaryOp") {
    io = expect_io(1, 2, 1, 1);
  } else if (t == "Scale") {
    io = expect_io(1, 2, 1, 1);
  } else if (t == "Crop") {
    io = expect_io(1, 2, 1, 1);
  } else {
    io = expect_io(1, 1, 1, 1);
  }
  if (!io.ok()) return io;

  if (t == "Convolution" || t == "Deconvolution" || t == "InnerProduct") {
    if (p.GetInt(0, 0) <= 0) return Unsupported(layer, file, "num_output must be positive");
    int weights = p.GetInt(t == "InnerProduct" ? 2 : 6, 0);
    if (weights <= 0) return Unsupported(layer, file, "weight_data_size must be positive");
    if (!OneOf(p.GetInt(9, 0), {0, 1, 2, 3, 4})) {
      return Unsupported(layer, file, "activation_type " + std::to_string(p.GetInt(9, 0)) + " not supported");
    }
    if (t != "InnerProduct") {
      int kw = p.GetInt(1, 0);
      int kh = p.GetInt(11, kw);
      if (kw <= 0 || kh <= 0 || p.GetInt(3, 1) <= 0 || p.GetInt(13, p.GetInt(3, 1)) <= 0 ||
          p.GetInt(2, 1) <= 0 || p.GetInt(12, p.GetInt(2, 1)) <= 0) {
        return Unsupported(layer, file, "kernel, stride and dilation must be positive");
      }
      if (p.GetInt(4, 0) < 0) return Unsupported(layer, file, "negative ('same') padding modes are not supported");
      // In 64 bits, one factor at a time: three ints from a file may overflow
      // (and reach 0). A product above `weights` cannot divide it.
      const int64_t per_row = static_cast<int64_t>(p.GetInt(0, 0)) * kw;
      if (per_row > weights || weights % (per_row * kh) != 0) {
        return Unsupported(layer, file, "weight_data_size is not a multiple of num_output x kernel size");
      }
    }
  } else if (t == "Eltwise") {
    if (!OneOf(p.GetInt(0, 1), {0, 1, 2})) return Unsupported(layer, file, "Eltwise op_type not supported");
  } else if (t == "BinaryOp") {
    if (!OneOf(p.GetInt(0, 0), {0, 1, 2, 3})) return Unsupported(layer, file, "BinaryOp op_type not supported");
  } else if (t == "Interp") {
    if (!OneOf(p.GetInt(0, 0), {1, 2, 3})) return Unsupported(layer, file, "Interp resize_type not supported");
  } else if (t == "Pooling") {
    if (p.GetInt(0, 0) != 1 || p.GetInt(4, 0) != 1) {
      return Unsupported(layer, file, "only global average pooling is supported");
    }
  } else if (t == "PixelShuffle") {
    if (p.GetInt(0, 1) <= 0 || p.GetInt(1, 0) != 0) return Unsupported(layer, file, "PixelShuffle mode not supported");
  } else if (t == "Concat") {
    if (p.GetInt(0, 0) != 0) return Unsupported(layer, file, "only channel concatenation (axis 0) is supported");
  } else if (t == "Scale") {
    int size = p.GetInt(0, 0);
    if (size == -233 && layer.bottoms.size() != 2) return Unsupported(layer, file, "Scale -233 needs a second input");
    if (size != -233 && size <= 0) return Unsupported(layer, file, "scale_data_size must be positive or -233");
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
    const ParamDict& p = layer.params;
    LayerWeights& w = model.weights[i];
    const std::string label = "layer '" + layer.name + "'";
    auto read = [&](std::vector<float>* out, size_t count, WeightEncoding encoding, const char* what) -> Status {
      Result<std::vector<float>> data = reader.Read(count, encoding, label + " " + what);
      if (!data.ok()) return data.status();
      *out = std::move(data).value();
      return Status::Ok();
    };
    Status s;
    if (layer.type == "Convolution" || layer.type == "Deconvolution" || layer.type == "InnerProduct") {
      size_t count = static_cast<size_t>(p.GetInt(layer.type == "InnerProduct" ? 2 : 6, 0));
      s = read(&w.weight, count, WeightEncoding::kTagged, "weight");
      if (s.ok() && p.GetInt(layer.type == "InnerProduct" ? 1 : 5, 0) != 0) {
        s = read(&w.bias, static_cast<size_t>(p.GetInt(0, 0)), WeightEncoding::kRawFloat, "bias");
      }
    } else if (layer.type == "PReLU") {
      s = read(&w.weight, static_cast<size_t>(std::max(1, p.GetInt(0, 0))), WeightEncoding::kRawFloat, "slope");
    } else if (layer.type == "Scale" && p.GetInt(0, 0) != -233) {
      size_t count = static_cast<size_t>(p.GetInt(0, 0));
      s = read(&w.weight, count, WeightEncoding::kRawFloat, "scale");
      if (s.ok() && p.GetInt(1, 0) != 0) s = read(&w.bias, count, WeightEncoding::kRawFloat, "bias");
    }
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
