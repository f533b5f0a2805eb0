// Keep-alive worker vs one process spawned per request: same requests, same run.
//
//   make bench            (or: build/bench/worker_bench --benchmark_counters_tabular=true)
//
// Each benchmark iteration is one request: one noise PNG of side N (the argument:
// 64 or 256) upscaled x2 with lanczos. Counters: req_per_s, p50_ms, p95_ms (wall-clock latency per request),
// error_rate; the keep-alive row adds the worker's resident memory at the end
// (rss_mb), the spawn row the keep-alive worker's throughput over its own
// (keepalive_speedup), since both rows run in one process, one after the other.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "bench_images.h"
#include "protocol/codec.h"
#include "worker/worker_process.h"

namespace {

using Clock = std::chrono::steady_clock;

std::vector<uint8_t> BenchImage(int side) { return tessera::bench::NoisePng(side); }

std::vector<uint8_t> Frame(uint64_t id, const std::vector<uint8_t>& image) {
  tessera::protocol::RequestFrameSpec spec;
  spec.request_id = id;
  spec.quality = "x2";
  spec.images = {image};
  return tessera::protocol::EncodeRequestFrame(spec);
}

std::map<int64_t, double> g_keepalive_req_per_s;  // by image side

double RssMiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

double Report(benchmark::State& state, std::vector<double>& ms, int errors) {
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) { return ms[std::min(ms.size() - 1, static_cast<size_t>(q * ms.size()))]; };
  double total = 0;
  for (double m : ms) total += m;
  state.counters["p50_ms"] = at(0.50);
  state.counters["p95_ms"] = at(0.95);
  double req_per_s = 1000.0 * static_cast<double>(ms.size()) / total;
  state.counters["req_per_s"] = req_per_s;
  state.counters["error_rate"] = static_cast<double>(errors) / static_cast<double>(ms.size());
  return req_per_s;
}

void BM_KeepAliveWorker(benchmark::State& state) {
  const std::vector<uint8_t> image = BenchImage(static_cast<int>(state.range(0)));
  auto worker = tessera::worker::WorkerProcess::Start(TESSERA_BINARY, {"--keep-alive", "--log-level", "warn"});
  if (!worker.ok()) {
    state.SkipWithError(worker.status().message().c_str());
    return;
  }
  // One warm-up request: the process start is not what this measures.
  (void)worker->Call(Frame(0, image));
  std::vector<double> ms;
  int errors = 0;
  uint64_t id = 1;
  for (auto _ : state) {
    auto start = Clock::now();
    auto r = worker->Call(Frame(id++, image));
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    if (!r.ok() || r->status != 0) ++errors;
  }
  state.counters["rss_mb"] = RssMiB(worker->process().pid());
  (void)worker->Finish();
  g_keepalive_req_per_s[state.range(0)] = Report(state, ms, errors);
}

void BM_SpawnPerRequest(benchmark::State& state) {
  const std::vector<uint8_t> image = BenchImage(static_cast<int>(state.range(0)));
  std::vector<double> ms;
  int errors = 0;
  uint64_t id = 1;
  for (auto _ : state) {
    auto start = Clock::now();
    auto worker = tessera::worker::WorkerProcess::Start(TESSERA_BINARY, {"--mode", "stdin", "--log-level", "warn"});
    if (!worker.ok()) {
      state.SkipWithError(worker.status().message().c_str());
      return;
    }
    auto r = worker->Call(Frame(id++, image));
    (void)worker->Finish();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    if (!r.ok() || r->status != 0) ++errors;
  }
  double spawn_req_per_s = Report(state, ms, errors);
  if (auto it = g_keepalive_req_per_s.find(state.range(0)); it != g_keepalive_req_per_s.end()) {
    state.counters["keepalive_speedup"] = it->second / spawn_req_per_s;
  }
}

// The same 100 requests each way, so the two rows compare like with like.
BENCHMARK(BM_KeepAliveWorker)->Arg(64)->Arg(256)->Iterations(100)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SpawnPerRequest)->Arg(64)->Arg(256)->Iterations(100)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
