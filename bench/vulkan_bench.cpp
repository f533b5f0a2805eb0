// The Vulkan backend's host side, on whatever Vulkan device is vulkan:N
// (llvmpipe here, a GPU elsewhere).
//
//   make bench-vulkan   (build/bench/vulkan_bench [--device N])
//
// BM_EnqueueBatch: the host time to put one batch of tiles of
// realesr-animevideov3-x4 on the device's queue (GraphExecutor::RunOnBackend
// records; nothing runs until the flush, which is not timed): every layer's
// dispatches and descriptor sets recorded afresh (/0) against one replay of
// the batch's recording (/1, vulkan_recording.h). That host time is what a GPU
// waits for between batches, or what a thread of the worker spends instead of
// decoding. BM_RunBatch: the same batch with its flush, the whole cost on this
// device (the copies a replay adds included). BM_Image: whole images, tiles
// cut on the device (/1) against the host path's two tile threads (/0).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <random>

#include "engine/backends/vulkan/vulkan_backend.h"
#include "engine/graph_executor.h"
#include "engine/model_catalog.h"
#include "engine/model_upscaler.h"
#include "engine/ncnn/param_parser.h"

namespace {

using namespace tessera;
using namespace tessera::engine;

int g_device = 0;
constexpr char kModel[] = "realesr-animevideov3-x4";
constexpr int kBatch = 4, kTile = 32 + 2 * 10;  // 4 tiles of 32, padded by 10 as the upscaler pads them

struct Setup {
  std::shared_ptr<vulkan::VulkanBackend> backend;
  std::unique_ptr<ncnn::Model> model;
  std::unique_ptr<GraphExecutor> executor;
  Tensor input;
};

Setup Make(benchmark::State& state, bool record_runs) {
  Setup s;
  vulkan::VulkanBackendOptions options;
  options.record_runs = record_runs;
  auto backend = vulkan::VulkanBackend::Create(g_device, options);
  auto model = ncnn::LoadModel(DefaultModelDir(), kModel);
  if (!backend.ok() || !model.ok()) {
    state.SkipWithError((backend.ok() ? model.status() : backend.status()).ToString().c_str());
    return s;
  }
  s.backend = std::move(backend).value();
  s.model = std::make_unique<ncnn::Model>(std::move(model).value());
  s.executor = std::make_unique<GraphExecutor>(*s.model, *s.backend);
  Tensor host = Tensor::Chw(3 * kBatch, kTile, kTile);
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> value(0.f, 1.f);
  for (float& v : host.data) v = value(gen);
  host.n = kBatch;
  host.c = 3;
  auto input = s.backend->FromHost(std::move(host));
  if (!input.ok()) {
    state.SkipWithError(input.status().ToString().c_str());
    return s;
  }
  s.input = std::move(input).value();
  // Weights uploaded, pipelines built, and (when recording) the batch's shape recorded.
  auto first = s.executor->RunOnBackend(s.input, Deadline());
  if (!first.ok() || !s.backend->gpu().Flush().ok()) state.SkipWithError("the first batch failed");
  return s;
}

void BM_EnqueueBatch(benchmark::State& state) {
  Setup s = Make(state, state.range(0) == 1);
  if (!s.backend) return;
  vulkan::VulkanDevice& device = s.backend->gpu();
  uint64_t dispatches = 0;
  for (auto _ : state) {
    const uint64_t before = device.dispatches_recorded();
    auto out = s.executor->RunOnBackend(s.input, Deadline());
    state.PauseTiming();
    dispatches += device.dispatches_recorded() - before;
    if (!out.ok() || !device.Flush().ok()) state.SkipWithError("a batch failed");
    state.ResumeTiming();
  }
  state.counters["dispatches_per_batch"] = static_cast<double>(dispatches) / state.iterations();
}

void BM_RunBatch(benchmark::State& state) {
  Setup s = Make(state, state.range(0) == 1);
  if (!s.backend) return;
  for (auto _ : state) {
    auto out = s.executor->RunOnBackend(s.input, Deadline());
    if (!out.ok() || !s.backend->gpu().Flush().ok()) state.SkipWithError("a batch failed");
  }
  state.counters["tiles_per_s"] = benchmark::Counter(kBatch, benchmark::Counter::kIsIterationInvariantRate);
}

// A 96 x 96 image in tiles of 32 through ModelUpscaler: tiles cut on the
// device, batched (/1), or through the host one at a time by two threads
// (/0), where one tile's upload and recording overlap the other's compute.
void BM_Image(benchmark::State& state) {
  vulkan::VulkanBackendOptions options;
  options.device_tiling = state.range(0) == 1;
  auto backend = vulkan::VulkanBackend::Create(g_device, options);
  auto manifest = ReadManifest(DefaultModelDir());
  if (!backend.ok() || !manifest.ok()) {
    state.SkipWithError("no Vulkan device or no models");
    return;
  }
  const auto entry =
      std::find_if(manifest->begin(), manifest->end(), [](const ModelEntry& e) { return e.name == kModel; });
  if (entry == manifest->end()) {
    state.SkipWithError("model not installed");
    return;
  }
  auto upscaler = ModelUpscaler::Load(DefaultModelDir(), *entry, 32, BackendSet{*backend, nullptr});
  if (!upscaler.ok()) {
    state.SkipWithError(upscaler.status().ToString().c_str());
    return;
  }
  Tensor rgb = Tensor::Chw(3, 96, 96);
  std::mt19937 gen(2);
  std::uniform_real_distribution<float> value(0.f, 1.f);
  for (float& v : rgb.data) v = value(gen);
  if (!(*upscaler)->RunPlanar(rgb, Deadline(), nullptr, nullptr).ok()) state.SkipWithError("warm-up failed");
  for (auto _ : state) {
    if (!(*upscaler)->RunPlanar(rgb, Deadline(), nullptr, nullptr).ok()) state.SkipWithError("an image failed");
  }
}

// Fixed iterations: each flush is a whole batch of llvmpipe work, untimed in BM_EnqueueBatch.
BENCHMARK(BM_EnqueueBatch)->ArgName("replay")->Arg(0)->Arg(1)->Iterations(20)->Repetitions(3)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Image)->ArgName("device_tiling")->Arg(0)->Arg(1)->Iterations(3)->Repetitions(3)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RunBatch)->ArgName("replay")->Arg(0)->Arg(1)->Iterations(5)->Repetitions(3)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--device") == 0) g_device = std::atoi(argv[i + 1]);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
