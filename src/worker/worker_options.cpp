#include "worker/worker_options.h"

#include <algorithm>
#include <thread>

#include "engine/buffer_pool.h"
#include "engine/model_catalog.h"
#include "engine/ops/dnnl_convolution.h"
#include "runtime/plan_cache.h"
#include "util/log.h"
#include "util/process_memory.h"

namespace tessera::worker {

size_t EffectivePipelineDepth(int configured) {
  if (configured >= 0) return static_cast<size_t>(configured);
  return std::thread::hardware_concurrency() >= 2 ? 1 : 0;
}

void ResolveMachineDefaults(WorkerOptions* options) {
  engine::ops::SetComputeThreads(options->threads);
  engine::ActivationPool().set_idle_release(options->pool_idle_release);
  if (options->model_dir.empty()) options->model_dir = engine::DefaultModelDir();
  if (options->cache_dir.empty()) options->cache_dir = runtime::DefaultPlanCacheDir();
  if (options->limits.ram_budget_bytes != 0) return;
  constexpr uint64_t kFloor = 256ull << 20;
  std::optional<uint64_t> available = AvailableMemoryBytes();
  if (!available) {
    LogWarn("ram_budget").Field("detail", "available memory unknown; using 1 GiB");
    options->limits.ram_budget_bytes = 1ull << 30;
    return;
  }
  options->limits.ram_budget_bytes = std::max(kFloor, *available / 2);
}

}  // namespace tessera::worker
