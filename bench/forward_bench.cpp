// The tessera side of bench/onnx/compare.sh: one forward pass of a model through
// the engine's GraphExecutor (the executor ModelUpscaler runs each tile through,
// oneDNN backend) on exactly the padded input the ONNX Runtime side reads, so the
// two sides time the same graph on the same bytes. The output is checked against
// the exporter's reference (the float64 oracle's output, or the float32 export's
// on sizes the oracle is too slow for) before anything is timed.
//
//   build/bench/forward_bench build/bench-onnx/realesr-animevideov3-x4-276.json [--runs 5] [--warmup 2]
//
// Threads: oneDNN's OpenMP pool (OMP_NUM_THREADS). Prints one JSON line:
// {"side":"tessera", "model", "size", "max_abs_diff", "tolerance", "runs", "min_ms",
// "median_ms", "max_ms", "ms" (every run, sorted), "isa"}. Exit 1 when the output is off the reference.
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "engine/backend_registry.h"
#include "engine/graph_executor.h"
#include "engine/model_catalog.h"
#include "engine/ncnn/model.h"

namespace {

using namespace tessera;
using namespace tessera::engine;

int Fail(const std::string& message, int code = 2) {
  std::cerr << "forward_bench: " << message << "\n";
  return code;
}

bool ReadFloats(const std::string& path, size_t count, float* out) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in || static_cast<size_t>(in.tellg()) != count * sizeof(float)) return false;
  in.seekg(0);
  return static_cast<bool>(in.read(reinterpret_cast<char*>(out), static_cast<std::streamsize>(count * sizeof(float))));
}

const char* IsaName(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41: return "SSE41";
    case dnnl::cpu_isa::avx: return "AVX";
    case dnnl::cpu_isa::avx2: return "AVX2";
    case dnnl::cpu_isa::avx2_vnni: return "AVX2_VNNI";
    case dnnl::cpu_isa::avx512_core: return "AVX512_CORE";
    case dnnl::cpu_isa::avx512_core_vnni: return "AVX512_CORE_VNNI";
    case dnnl::cpu_isa::avx512_core_bf16: return "AVX512_CORE_BF16";
    case dnnl::cpu_isa::avx512_core_amx: return "AVX512_CORE_AMX";
    default: return "other";
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string meta_path;
  int runs = 5, warmup = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--runs" || a == "--warmup") && i + 1 < argc) {
      const int v = std::atoi(argv[++i]);
      if (v < 0 || (a == "--runs" && v < 1)) return Fail(a + " out of range");
      (a == "--runs" ? runs : warmup) = v;
    } else if (meta_path.empty() && a.rfind("--", 0) != 0) {
      meta_path = a;
    } else {
      return Fail("usage: forward_bench CASE.json [--runs N] [--warmup N]");
    }
  }
  if (meta_path.empty()) return Fail("usage: forward_bench CASE.json [--runs N] [--warmup N]");

  nlohmann::json meta;
  try {
    std::ifstream(meta_path) >> meta;
  } catch (const std::exception& e) {
    return Fail(meta_path + ": " + e.what());
  }
  const std::string name = meta.at("model");
  const auto in_shape = meta.at("input_shape").get<std::vector<int>>();
  const auto out_shape = meta.at("output_shape").get<std::vector<int>>();
  if (in_shape.size() != 4 || out_shape.size() != 4 || in_shape[0] != 1 || out_shape[0] != 1)
    return Fail("input_shape and output_shape must be 1 x C x H x W");

  auto model = ncnn::LoadModel(DefaultModelDir(), name);
  if (!model.ok()) return Fail(model.status().message());
  // The CPU's backends as the worker gets them (oneDNN, reference fallback).
  Result<BackendSet> backends = BackendsFor(Device::Cpu());
  if (!backends.ok()) return Fail(backends.status().message());
  GraphExecutor executor(*model, *backends->backend, backends->fallback.get());

  Tensor input = Tensor::Chw(in_shape[1], in_shape[2], in_shape[3]);
  if (!ReadFloats(meta.at("input"), input.size(), input.data.data()))
    return Fail("cannot read " + meta.at("input").get<std::string>() + " as the input shape");
  std::vector<float> reference(static_cast<size_t>(out_shape[1]) * out_shape[2] * out_shape[3]);
  if (!ReadFloats(meta.at("reference"), reference.size(), reference.data()))
    return Fail("cannot read " + meta.at("reference").get<std::string>() + " as the output shape");

  // The first run creates the primitives; its output is the one checked.
  auto first = executor.Run(input, Deadline());
  if (!first.ok()) return Fail(first.status().message());
  if (first->c != out_shape[1] || first->h != out_shape[2] || first->w != out_shape[3] ||
      first->size() != reference.size())
    return Fail("output is not " + meta.at("output_shape").dump());
  double max_diff = 0;
  for (size_t i = 0; i < reference.size(); ++i)
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(first->data[i] - reference[i])));
  const double tolerance = meta.at("tolerance");
  if (!(max_diff <= tolerance))
    return Fail(name + ": output off the reference by " + std::to_string(max_diff), 1);
  for (int i = 1; i < warmup; ++i) (void)executor.Run(input, Deadline());

  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    Tensor copy = input;  // Run consumes its input; the copy stays out of the timing
    const auto start = std::chrono::steady_clock::now();
    auto out = executor.Run(std::move(copy), Deadline());
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    if (!out.ok()) return Fail(out.status().message());
  }
  std::sort(ms.begin(), ms.end());
  const size_t mid = ms.size() / 2;
  const double median = ms.size() % 2 ? ms[mid] : (ms[mid - 1] + ms[mid]) / 2;
  nlohmann::json line = {{"side", "tessera"},       {"model", name},
                         {"size", in_shape[3]},     {"max_abs_diff", max_diff},
                         {"tolerance", tolerance},  {"reference_kind", meta.at("reference_kind")},
                         {"runs", ms.size()},       {"min_ms", ms.front()},
                         {"median_ms", median},     {"max_ms", ms.back()},
                         {"ms", ms},
                         {"isa", IsaName(dnnl::get_effective_cpu_isa())}};
  std::cout << line.dump() << std::endl;
  return 0;
}
