// The parsed form of an ncnn `.param` file: layers in file order, blobs by index,
// and each layer's typed key=value parameters. No weights, no execution.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/ncnn/layer_kind.h"

namespace tessera::engine::ncnn {

// One parameter value. ncnn writes integers and floats as text and tells them
// apart by their spelling ("1" vs "1.0" / "1e-1"); arrays are "count,v1,v2,...".
struct ParamValue {
  bool is_array = false;
  bool is_float = false;        // spelled as a float (for scalars and arrays alike)
  std::vector<double> numbers;  // one for scalars
};

class ParamDict {
 public:
  void Set(int id, ParamValue value) { values_[id] = std::move(value); }
  bool Has(int id) const { return values_.count(id) != 0; }
  // Scalars; the default when absent. Reading an array as a scalar gives the default.
  int GetInt(int id, int fallback) const;
  float GetFloat(int id, float fallback) const;
  // Arrays; empty when absent.
  std::vector<float> GetFloats(int id) const;
  std::vector<int> GetInts(int id) const;
  const std::map<int, ParamValue>& all() const { return values_; }

 private:
  std::map<int, ParamValue> values_;
};

struct LayerSpec {
  std::string type;  // "Convolution", ... as the file spells it
  LayerKind kind = LayerKind::kUnknown;  // set from `type` by whoever builds the spec (ncnn::KindOf)
  std::string name;
  std::vector<int> bottoms;  // blob indices consumed
  std::vector<int> tops;     // blob indices produced
  ParamDict params;
  int line = 0;  // 1-based line in the .param file, for error messages
};

struct ModelGraph {
  std::vector<LayerSpec> layers;
  std::vector<std::string> blob_names;  // index -> name
  std::optional<int> FindBlob(const std::string& name) const;
};

}  // namespace tessera::engine::ncnn
