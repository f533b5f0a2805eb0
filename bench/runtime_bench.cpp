// The memory-adaptive runtime measured in process (issue 4):
//
//   make bench-runtime   (or: build/bench/runtime_bench --benchmark_counters_tabular=true)
//
// - BM_ModelStart: a model made ready from its .param/.bin (cold) vs from the
//   compiled-plan cache (warm), for realesr-animevideov3-x4 and realesrgan-x4plus.
// - BM_Batch32: one request of 32 images through the worker's BatchProcessor,
//   decode / process / encode one image after another (depth 0) vs pipelined
//   (depth 1). Two workloads: lanczos x2 on 256x256 images, where decoding and
//   encoding weigh, and realesr-animevideov3-x2 on 64x64 images, where the model does.
// - BM_PeakRss: a model batch of 32 under --ram-budget 256 MiB, 1 GiB and
//   unlimited: the process's peak resident memory during the request (VmHWM,
//   reset before it), and whether the budget let it pipeline; BM_PeakRssLargeImage
//   the same for one 800x800 image, whose 16 tiles run in chunks sized by the budget.
#include <benchmark/benchmark.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "bench_images.h"
#include "engine/model_catalog.h"
#include "engine/model_upscaler.h"
#include "runtime/plan_cache.h"
#include "util/process_memory.h"
#include "worker/batch_processor.h"

namespace {

using namespace tessera;
using Clock = std::chrono::steady_clock;

std::vector<std::vector<uint8_t>> Batch(int side) {
  std::vector<std::vector<uint8_t>> images;
  for (int i = 0; i < 32; ++i) images.push_back(bench::NoisePng(side, 100.0 + i));
  return images;
}

worker::BatchOutcome ProcessBatch(worker::BatchProcessor& processor, const std::vector<std::vector<uint8_t>>& images,
                                  protocol::Engine engine, const std::string& quality) {
  protocol::Request request;
  request.engine = engine;
  request.quality = quality;
  uint64_t bytes = 0;
  for (const auto& i : images) {
    request.images.emplace_back(i);
    bytes += i.size();
  }
  return processor.Process(request, bytes, Deadline());
}

worker::WorkerOptions Options(size_t depth, uint64_t budget) {
  worker::WorkerOptions options;
  options.model_dir = engine::DefaultModelDir();
  options.pipeline_depth = static_cast<int>(depth);
  options.limits.ram_budget_bytes = budget;
  options.plan_cache = false;
  return options;
}

struct Workload {
  protocol::Engine engine;
  std::string quality;
  int side;
};
const Workload kWorkloads[] = {{protocol::Engine::kLanczos, "x2", 256},
                               {protocol::Engine::kRealEsrgan, "realesr-animevideov3-x2", 64}};

void BM_Batch32(benchmark::State& state) {
  const Workload& w = kWorkloads[state.range(0)];
  const size_t depth = static_cast<size_t>(state.range(1));
  const auto images = Batch(w.side);
  worker::WorkerOptions options = Options(depth, 8ull << 30);
  worker::BatchProcessor processor(options);
  (void)ProcessBatch(processor, images, w.engine, w.quality);  // warm: model loaded, primitives made
  double seconds = 0;
  worker::StageTimings spent;
  bool pipelined = false;
  for (auto _ : state) {
    auto start = Clock::now();
    worker::BatchOutcome out = ProcessBatch(processor, images, w.engine, w.quality);
    seconds += std::chrono::duration<double>(Clock::now() - start).count();
    if (!out.status.ok()) {
      state.SkipWithError(out.status.message().c_str());
      return;
    }
    spent = out.timings;
    pipelined = out.pipelined;
  }
  state.counters["images_per_s"] = 32.0 * static_cast<double>(state.iterations()) / seconds;
  state.counters["decode_ms"] = spent.decode_ms;
  state.counters["process_ms"] = spent.process_ms;
  state.counters["encode_ms"] = spent.encode_ms;
  state.counters["pipelined"] = pipelined ? 1 : 0;
  state.SetLabel(w.quality + " " + std::to_string(w.side) + "px");
}
BENCHMARK(BM_Batch32)
    ->ArgsProduct({{0, 1}, {0, 1}})
    ->ArgNames({"workload", "depth"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);

// Peak resident memory of one request under a --ram-budget (MiB; 0 = unlimited).
void PeakRssUnderBudget(benchmark::State& state, const std::vector<std::vector<uint8_t>>& images) {
  const uint64_t budget = static_cast<uint64_t>(state.range(0)) << 20;
  const Workload& w = kWorkloads[1];
  worker::WorkerOptions options = Options(1, budget > 0 ? budget : (1ull << 50));
  worker::BatchProcessor processor(options);
  (void)ProcessBatch(processor, {bench::NoisePng(16)}, w.engine, w.quality);  // model loaded before measuring
  double peak_mb = 0;
  bool pipelined = false;
  for (auto _ : state) {
    tessera::ResetPeakRss();
    worker::BatchOutcome out = ProcessBatch(processor, images, w.engine, w.quality);
    if (!out.status.ok()) {
      state.SkipWithError(out.status.message().c_str());
      return;
    }
    peak_mb = static_cast<double>(tessera::PeakRssBytes()) / (1 << 20);
    pipelined = out.pipelined;
    state.counters["estimate_mb"] = static_cast<double>(out.estimated_peak_bytes) / (1 << 20);
  }
  state.counters["peak_rss_mb"] = peak_mb;
  state.counters["pipelined"] = pipelined ? 1 : 0;
  state.SetLabel(budget > 0 ? "--ram-budget " + std::to_string(budget >> 20) + "MiB" : "unlimited");
}

// The batch of 32 (128x128: one tile each).
void BM_PeakRss(benchmark::State& state) { PeakRssUnderBudget(state, Batch(128)); }
BENCHMARK(BM_PeakRss)->Arg(256)->Arg(1024)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

// One 800x800 image: 16 tiles, so the budget decides how many run in a chunk.
void BM_PeakRssLargeImage(benchmark::State& state) { PeakRssUnderBudget(state, {bench::NoisePng(800)}); }
BENCHMARK(BM_PeakRssLargeImage)->Arg(256)->Arg(1024)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime()
    ->Iterations(1);

void BM_ModelStart(benchmark::State& state, const std::string& name, bool warm) {
  const std::string model_dir = engine::DefaultModelDir();
  auto manifest = engine::ReadManifest(model_dir);
  if (!manifest.ok()) {
    state.SkipWithError(manifest.status().message().c_str());
    return;
  }
  const engine::ModelEntry* entry = nullptr;
  for (const auto& e : *manifest)
    if (e.name == name) entry = &e;
  if (entry == nullptr) {
    state.SkipWithError("model not installed; run scripts/fetch-models");
    return;
  }
  const std::string cache_dir = std::filesystem::temp_directory_path() / ("tessera-bench-plans-" + name);
  std::filesystem::remove_all(cache_dir);
  runtime::PlanCache cache(cache_dir);
  const int tile = engine::ModelUpscaler::ResolvedTileSize(0);
  if (warm) (void)runtime::LoadModelWithPlanCache(cache, model_dir, name, tile);  // fills the cache
  double seconds = 0;
  for (auto _ : state) {
    auto start = Clock::now();
    if (warm) {
      auto model = runtime::LoadModelWithPlanCache(cache, model_dir, name, tile);
      benchmark::DoNotOptimize(engine::ModelUpscaler::FromModel(*entry, std::move(model).value(), tile));
    } else {
      benchmark::DoNotOptimize(engine::ModelUpscaler::Load(model_dir, *entry, tile));
    }
    seconds += std::chrono::duration<double>(Clock::now() - start).count();
  }
  state.counters["ready_ms"] = seconds * 1e3 / static_cast<double>(state.iterations());
  std::filesystem::remove_all(cache_dir);
}
BENCHMARK_CAPTURE(BM_ModelStart, animevideov3_x4_cold, "realesr-animevideov3-x4", false)
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
BENCHMARK_CAPTURE(BM_ModelStart, animevideov3_x4_warm, "realesr-animevideov3-x4", true)
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
BENCHMARK_CAPTURE(BM_ModelStart, x4plus_cold, "realesrgan-x4plus", false)
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK_CAPTURE(BM_ModelStart, x4plus_warm, "realesrgan-x4plus", true)
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
