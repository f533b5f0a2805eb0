// What the per-op tests of every backend build their cases from: random
// tensors of a seed, and one layer parsed from ncnn text like the models'.
#pragma once

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "engine/ncnn/param_parser.h"
#include "engine/tensor.h"

namespace tessera::engine::op_tests {

// A C x H x W tensor of uniform values in [lo, hi).
inline Tensor Random(int c, int h, int w, int seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  Tensor t = Tensor::Chw(c, h, w);
  for (float& v : t.data) v = d(gen);
  return t;
}

// A 1-D tensor of `n` uniform values in [lo, hi).
inline Tensor RandomVector(int n, int seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  Tensor t = Tensor::Vector(n);
  for (float& v : t.data) v = d(gen);
  return t;
}

// A layer of `type` with `inputs` bottoms, parsed from ncnn text like the models'.
inline ncnn::LayerSpec Layer(const std::string& type, int inputs, const std::string& kv) {
  std::string text = "7767517\n" + std::to_string(inputs + 1) + " " + std::to_string(inputs + 1) + "\n";
  std::string bottoms;
  for (int i = 0; i < inputs; ++i) {
    text += "Input in" + std::to_string(i) + " 0 1 b" + std::to_string(i) + "\n";
    bottoms += " b" + std::to_string(i);
  }
  text += type + " l " + std::to_string(inputs) + " 1" + bottoms + " out " + kv + "\n";
  auto g = ncnn::ParseParam(text, "t.param");
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return g.ok() ? g->layers.back() : ncnn::LayerSpec();
}

// A whole model parsed from ncnn text, its weights given per layer index as
// {weight count, bias count}: uniform values in [-range, range) of `seed`
// (layers not listed have none).
inline ncnn::Model RandomModel(const std::string& name, const std::string& param,
                               const std::vector<std::pair<size_t, std::pair<size_t, size_t>>>& weights,
                               unsigned seed, float range) {
  auto graph = ncnn::ParseParam(param, name + ".param");
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  ncnn::Model model;
  model.name = name;
  if (!graph.ok()) return model;
  model.graph = std::move(graph).value();
  model.weights.resize(model.graph.layers.size());
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(-range, range);
  auto fill = [&](size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = d(gen);
    return v;
  };
  for (const auto& [layer, counts] : weights) {
    std::vector<float> w = fill(counts.first);
    model.weights[layer] = {std::move(w), fill(counts.second)};
  }
  return model;
}

}  // namespace tessera::engine::op_tests
