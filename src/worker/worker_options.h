// Everything that configures a worker, with the defaults documented in
// docs/worker.md and `tessera worker --help`.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/backend_registry.h"
#include "imaging/image_codec.h"

namespace tessera::worker {

struct WorkerLimits {
  uint32_t max_batch_items = 64;
  uint64_t max_message_bytes = 256ull << 20;
  uint64_t max_image_bytes = 64ull << 20;
  uint64_t max_image_pixels = 40'000'000;
  // Peak memory a request may need by the worst-case estimate; 0 = not set yet
  // (resolved at start to half of the memory available then, at least 256 MiB).
  uint64_t ram_budget_bytes = 0;
};

struct WorkerOptions {
  WorkerLimits limits;
  std::chrono::milliseconds request_timeout{0};  // 0: no timeout
  bool gpu_fallback = true;                      // gpu_id >= 0 without a usable GPU: run on CPU
  // A device named by the user (`tessera upscale --device vulkan:N`) that every
  // request runs on instead of its gpu_id's; empty: the gpu_id decides. The
  // protocol's gpu_id names CUDA devices only, so a Vulkan device — llvmpipe
  // included, which nothing chooses on its own — runs only when named here.
  std::optional<engine::Device> device;
  engine::BackendOptions backend;                // --precision, --vram-budget
  // Used when a request's quality string is empty: the model for engines 1-3, the
  // factor for lanczos (and, later, the model scale). The request's string wins.
  std::string model_name;
  std::string scale = "2";
  std::string model_dir;  // empty: resolved to $TESSERA_MODEL_DIR or ~/.cache/tessera/models
  int tile_size = 0;  // 0 = automatic; lanczos ignores it (libvips streams in strips)
  imaging::OutputFormat format = imaging::OutputFormat::kPng;
  int threads = 0;  // 0 = one per core
  // Loaded models kept for later requests (runtime::ModelCache): at most this many,
  // and at most this many bytes of weights (0 = no byte bound).
  size_t max_loaded_models = 3;
  uint64_t max_loaded_model_bytes = 0;
  bool cache_stats = false;          // --stats: one model_cache line per request
  std::vector<std::string> warmup;  // models loaded in the background at start
  // The compiled-plan cache (runtime::PlanCache): parsed graphs and fp32 weights
  // kept on disk, so a later load skips parsing and conversion.
  bool plan_cache = true;  // --no-plan-cache: false
  std::string cache_dir;   // --cache-dir; empty: resolved to ~/.cache/tessera/plans
  // Chunks of tiles (engine/memory_planner.h): the fraction of free memory a
  // chunk may take is 0.28 instead of 0.45 in safe mode (--safe-mode or
  // TESSERA_SAFE_MODE=1); --max-chunk-mb caps a chunk (0 = the first budget of
  // each job); --oom-retries smaller chunks are tried after an out-of-memory.
  bool safe_mode = false;
  // Free tensor blocks kept for reuse (engine/buffer_pool.h) go back to the
  // system after this long unused.
  std::chrono::milliseconds pool_idle_release{std::chrono::seconds(30)};
  uint64_t max_chunk_bytes = 0;
  int oom_retries = 3;
  // Images waiting between two stages of a request's decode → process → encode
  // pipeline (runtime/pipeline.h); 0 runs the images one after another; -1 =
  // automatic (EffectivePipelineDepth).
  int pipeline_depth = -1;
  bool profiling = false;
  bool log_protocol = false;
};

// Fills in defaults that depend on the machine (the RAM budget).
void ResolveMachineDefaults(WorkerOptions* options);

// The pipeline depth to use for `configured` (-1 = automatic: 1 with 2 cores or
// more, else 0 — one core has nothing to overlap on).
size_t EffectivePipelineDepth(int configured);

}  // namespace tessera::worker
