#include "engine/ncnn/param_parser.h"

#include <charconv>
#include <cmath>
#include <unordered_map>

#include "engine/ncnn/layer_table.h"

namespace tessera::engine::ncnn {
namespace {

// Splits text into lines and lines into whitespace-separated tokens, keeping
// line numbers for messages.
class LineReader {
 public:
  explicit LineReader(std::string_view text) : text_(text) {}

  // Next line with at least one token; false at the end.
  bool Next(std::vector<std::string_view>* tokens) {
    while (pos_ < text_.size()) {
      size_t end = text_.find('\n', pos_);
      if (end == std::string_view::npos) end = text_.size();
      std::string_view line = text_.substr(pos_, end - pos_);
      pos_ = end + 1;
      ++line_number_;
      tokens->clear();
      size_t i = 0;
      while (i < line.size()) {
        while (i < line.size() && IsSpace(line[i])) ++i;
        size_t start = i;
        while (i < line.size() && !IsSpace(line[i])) ++i;
        if (i > start) tokens->push_back(line.substr(start, i - start));
      }
      if (!tokens->empty()) return true;
    }
    return false;
  }
  int line_number() const { return line_number_; }

 private:
  static bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }
  std::string_view text_;
  size_t pos_ = 0;
  int line_number_ = 0;
};

bool ParseInt(std::string_view s, int* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool LooksFloat(std::string_view s) {
  return s.find_first_of(".eE") != std::string_view::npos && s.find_first_of("xX") == std::string_view::npos;
}

bool ParseNumber(std::string_view s, double* out, bool* is_float) {
  *is_float = LooksFloat(s);
  if (*is_float) {
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    return ec == std::errc() && end == s.data() + s.size() && std::isfinite(*out);
  }
  int v = 0;
  if (!ParseInt(s, &v)) return false;
  *out = v;
  return true;
}

}  // namespace

int ParamDict::GetInt(int id, int fallback) const {
  auto it = values_.find(id);
  if (it == values_.end() || it->second.is_array) return fallback;
  return static_cast<int>(it->second.numbers[0]);
}

float ParamDict::GetFloat(int id, float fallback) const {
  auto it = values_.find(id);
  if (it == values_.end() || it->second.is_array) return fallback;
  return static_cast<float>(it->second.numbers[0]);
}

std::vector<float> ParamDict::GetFloats(int id) const {
  auto it = values_.find(id);
  if (it == values_.end() || !it->second.is_array) return {};
  return {it->second.numbers.begin(), it->second.numbers.end()};
}

std::vector<int> ParamDict::GetInts(int id) const {
  std::vector<int> out;
  auto it = values_.find(id);
  if (it == values_.end() || !it->second.is_array) return out;
  for (double v : it->second.numbers) out.push_back(static_cast<int>(v));
  return out;
}

std::optional<int> ModelGraph::FindBlob(const std::string& name) const {
  for (size_t i = 0; i < blob_names.size(); ++i) {
    if (blob_names[i] == name) return static_cast<int>(i);
  }
  return std::nullopt;
}

Result<ModelGraph> ParseParam(std::string_view text, std::string_view file_name) {
  LineReader reader(text);
  std::vector<std::string_view> tokens;
  auto error = [&](const std::string& what, std::string_view layer = {}) {
    std::string where = std::string(file_name) + ":" + std::to_string(reader.line_number());
    if (!layer.empty()) where += ": layer '" + std::string(layer) + "'";
    return InvalidError(where + ": " + what);
  };

  int magic = 0;
  if (!reader.Next(&tokens) || tokens.size() != 1 || !ParseInt(tokens[0], &magic) || magic != kParamMagic) {
    return error("not an ncnn .param file (the first line must be " + std::to_string(kParamMagic) + ")");
  }
  int layer_count = 0;
  int blob_count = 0;
  if (!reader.Next(&tokens) || tokens.size() != 2 || !ParseInt(tokens[0], &layer_count) ||
      !ParseInt(tokens[1], &blob_count)) {
    return error("expected '<layer_count> <blob_count>'");
  }
  if (layer_count <= 0 || layer_count > kMaxLayers || blob_count <= 0 || blob_count > kMaxBlobs) {
    return error("layer_count " + std::to_string(layer_count) + " / blob_count " + std::to_string(blob_count) +
                 " out of range");
  }

  ModelGraph graph;
  graph.layers.reserve(static_cast<size_t>(layer_count));
  std::unordered_map<std::string, int> blob_index;

  for (int l = 0; l < layer_count; ++l) {
    if (!reader.Next(&tokens)) {
      return error("file ends after " + std::to_string(l) + " of " + std::to_string(layer_count) + " layers");
    }
    if (tokens.size() < 4) return error("a layer line needs '<type> <name> <bottom_count> <top_count>'");
    LayerSpec layer;
    layer.type = std::string(tokens[0]);
    layer.kind = KindOf(layer.type);
    layer.name = std::string(tokens[1]);
    layer.line = reader.line_number();
    int bottom_count = 0;
    int top_count = 0;
    if (!ParseInt(tokens[2], &bottom_count) || !ParseInt(tokens[3], &top_count) || bottom_count < 0 ||
        top_count < 0 || bottom_count > kMaxLayerIo || top_count > kMaxLayerIo) {
      return error("bad bottom/top counts", layer.name);
    }
    size_t io_end = 4 + static_cast<size_t>(bottom_count) + static_cast<size_t>(top_count);
    if (tokens.size() < io_end) return error("fewer blob names than the counts say", layer.name);

    for (int b = 0; b < bottom_count; ++b) {
      std::string name(tokens[4 + static_cast<size_t>(b)]);
      auto it = blob_index.find(name);
      if (it == blob_index.end()) return error("consumes blob '" + name + "' that no earlier layer produces", layer.name);
      layer.bottoms.push_back(it->second);
    }
    for (int t = 0; t < top_count; ++t) {
      std::string name(tokens[4 + static_cast<size_t>(bottom_count) + static_cast<size_t>(t)]);
      if (blob_index.count(name) != 0) return error("blob '" + name + "' is produced twice", layer.name);
      if (static_cast<int>(graph.blob_names.size()) >= blob_count) {
        return error("more blobs than the declared blob_count " + std::to_string(blob_count), layer.name);
      }
      int index = static_cast<int>(graph.blob_names.size());
      blob_index.emplace(name, index);
      graph.blob_names.push_back(name);
      layer.tops.push_back(index);
    }

    for (size_t p = io_end; p < tokens.size(); ++p) {
      std::string_view kv = tokens[p];
      size_t eq = kv.find('=');
      int key = 0;
      if (eq == std::string_view::npos || !ParseInt(kv.substr(0, eq), &key)) {
        return error("parameter '" + std::string(kv) + "' is not <id>=<value>", layer.name);
      }
      std::string_view value = kv.substr(eq + 1);
      ParamValue pv;
      int id = key;
      if (key <= kArrayKeyBase) {
        id = kArrayKeyBase - key;
        if (id >= 32) return error("array parameter id " + std::to_string(id) + " out of range", layer.name);
        pv.is_array = true;
        size_t comma = value.find(',');
        int count = 0;
        if (!ParseInt(value.substr(0, comma), &count) || count < 0 || count > kMaxArrayLength) {
          return error("array parameter " + std::to_string(id) + " has a bad element count", layer.name);
        }
        std::string_view rest = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
        for (int i = 0; i < count; ++i) {
          size_t next = rest.find(',');
          std::string_view item = rest.substr(0, next);
          double number = 0;
          bool is_float = false;
          if (item.empty() || !ParseNumber(item, &number, &is_float)) {
            return error("array parameter " + std::to_string(id) + " element " + std::to_string(i) +
                             " is not a number",
                         layer.name);
          }
          pv.is_float = pv.is_float || is_float;
          pv.numbers.push_back(number);
          rest = next == std::string_view::npos ? std::string_view() : rest.substr(next + 1);
          if (next == std::string_view::npos && i + 1 < count) {
            return error("array parameter " + std::to_string(id) + " has fewer elements than its count",
                         layer.name);
          }
        }
        if (!rest.empty()) {
          return error("array parameter " + std::to_string(id) + " has more elements than its count", layer.name);
        }
      } else {
        if (key < 0 || key >= 32) return error("parameter id " + std::to_string(key) + " out of range", layer.name);
        double number = 0;
        if (!ParseNumber(value, &number, &pv.is_float)) {
          return error("parameter " + std::to_string(id) + " value '" + std::string(value) + "' is not a number",
                       layer.name);
        }
        pv.numbers.push_back(number);
      }
      if (layer.params.Has(id)) return error("parameter " + std::to_string(id) + " given twice", layer.name);
      layer.params.Set(id, std::move(pv));
    }
    graph.layers.push_back(std::move(layer));
  }
  if (reader.Next(&tokens)) return error("text after the last declared layer");
  return graph;
}

}  // namespace tessera::engine::ncnn
