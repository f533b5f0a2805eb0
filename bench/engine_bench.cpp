// The inference engine on this machine's CPU.
//
//   make bench-engine   (build/bench/engine_bench --benchmark_counters_tabular=true)
//
// BM_RooflineConv: one oneDNN 3x3 convolution, 64 -> 64 channels, 128x128, the
// practical ceiling for these models' dominant layer. BM_Network: whole models
// through ModelUpscaler on a textured RGB input, tiles as in production:
// gflops (convolution FLOPs / time) and ms_per_mpx (per input megapixel), and
// ms_<LayerType>: wall time per layer type in one warm run of the padded tile
// (GraphExecutor's RunStats), to see where the time outside convolutions goes.
#include <benchmark/benchmark.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <array>
#include <string>
#include <vector>
#include <unordered_map>

#include <chrono>
#include <random>

#include "engine/backends/onednn_backend.h"
#include "engine/backends/reference_backend.h"
#include "engine/model_catalog.h"
#include "engine/model_upscaler.h"
#include "engine/ncnn/param_parser.h"
#include "engine/ops/dnnl_op.h"
#include "engine/ops/reference_ops.h"

namespace {

using namespace tessera;
using namespace tessera::engine;

Tensor Textured(int c, int h, int w) {
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> noise(0.f, 0.2f);
  Tensor t = Tensor::Chw(c, h, w);
  for (int q = 0; q < c; ++q)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) t.at(q, y, x) = 0.4f * (x + y) / (w + h) + noise(gen) + 0.1f * q;
  return t;
}

// The practical roofline: the convolution alone, in the layouts oneDNN picks
// (format_tag::any), no reorders in the timed loop.
void BM_RooflineConv(benchmark::State& state) {
  using dnnl::memory;
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const memory::dims src = {1, 64, 128, 128}, weights = {64, 64, 3, 3}, bias = {64};
  memory::desc any_src(src, memory::data_type::f32, memory::format_tag::any);
  memory::desc any_w(weights, memory::data_type::f32, memory::format_tag::any);
  memory::desc b_md(bias, memory::data_type::f32, memory::format_tag::x);
  dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, any_src,
                                    any_w, b_md, any_src, {1, 1}, {1, 1}, {1, 1});
  dnnl::convolution_forward::primitive_desc pd(d, engine);
  memory s_mem(pd.src_desc(), engine), w_mem(pd.weights_desc(), engine), b_mem(b_md, engine), d_mem(pd.dst_desc(), engine);
  std::fill_n(static_cast<float*>(s_mem.get_data_handle()), pd.src_desc().get_size() / 4, 0.5f);
  std::fill_n(static_cast<float*>(w_mem.get_data_handle()), pd.weights_desc().get_size() / 4, 0.01f);
  std::fill_n(static_cast<float*>(b_mem.get_data_handle()), 64, 0.f);
  dnnl::convolution_forward conv(pd);
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, s_mem}, {DNNL_ARG_WEIGHTS, w_mem}, {DNNL_ARG_BIAS, b_mem}, {DNNL_ARG_DST, d_mem}};
  conv.execute(stream, args);
  stream.wait();
  double seconds = 0;
  for (auto _ : state) {
    auto start = std::chrono::steady_clock::now();
    conv.execute(stream, args);
    stream.wait();
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  const double flops = 2.0 * 64 * 64 * 9 * 128 * 128;
  state.counters["gflops"] = flops * static_cast<double>(state.iterations()) / seconds / 1e9;
  state.SetLabel(pd.impl_info_str());
}

// PReLU on a blocked (nChw8c) 64-channel 220x220 map, as realesr-animevideov3
// runs it after each convolution on a 200x200 tile: tessera's in-place kernel
// (the reference backend's) against oneDNN's prelu primitive, also in place.
void BM_PReluBlocked(benchmark::State& state, bool onednn) {
  auto graph = ncnn::ParseParam("7767517\n2 2\nInput in 0 1 a\nPReLU p 1 1 a b 0=64\n", "bench.param");
  // Slopes of 1: the map stays the same run after run. Smaller slopes would
  // shrink negative values into denormals within a few hundred runs, and time those.
  ncnn::LayerWeights slopes;
  slopes.weight.assign(64, 1.f);
  auto op = ops::MakeDnnlOp(graph->layers[1], slopes, {});
  auto blocked = ops::ToLayout(Textured(64, 220, 220), Layout::kBlocked8);
  Tensor& map = *blocked;
  for (float& v : map.data) v -= 0.5f;  // about half negative
  for (auto _ : state) {
    if (onednn) {
      auto out = op->Run({{&map}, {&map}, LayoutSet::All()});
      map = std::move(out).value();
    } else {
      (void)ops::PReluInPlace(&map, slopes);
    }
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = benchmark::Counter(2.0 * static_cast<double>(map.size()) * sizeof(float) *
                                                  static_cast<double>(state.iterations()),
                                              benchmark::Counter::kIsRate);
}

// One light layer as the networks run it, reference kernel (plain inputs) against
// its oneDNN op (inputs in the layout the executor would give it; not in place).
struct LayerCase {
  std::string type, params;
  std::vector<std::array<int, 3>> inputs;  // c, h, w of each bottom
  bool blocked;                            // oneDNN op's inputs in nChw8c
};

void BM_LightLayer(benchmark::State& state, const LayerCase& lc, bool onednn) {
  std::string text = "7767517\n" + std::to_string(lc.inputs.size() + 1) + " " + std::to_string(lc.inputs.size() + 1) + "\n";
  std::string bottoms;
  for (size_t i = 0; i < lc.inputs.size(); ++i) {
    text += "Input in" + std::to_string(i) + " 0 1 b" + std::to_string(i) + "\n";
    bottoms += " b" + std::to_string(i);
  }
  text += lc.type + " l " + std::to_string(lc.inputs.size()) + " 1" + bottoms + " out " + lc.params + "\n";
  auto graph = ncnn::ParseParam(text, "bench.param");
  const ncnn::LayerSpec& layer = graph->layers.back();
  const ncnn::LayerWeights none;
  std::vector<Tensor> plain, laid_out;
  for (const auto& [c, h, w] : lc.inputs) {
    plain.push_back(Textured(c, h, w));
    laid_out.push_back(lc.blocked ? *ops::ToLayout(plain.back(), Layout::kBlocked8) : plain.back());
  }
  std::vector<const Tensor*> ref_in, op_in;
  for (size_t i = 0; i < plain.size(); ++i) {
    ref_in.push_back(&plain[i]);
    op_in.push_back(&laid_out[i]);
  }
  auto op = ops::MakeDnnlOp(layer, none, {});
  for (auto _ : state) {
    if (onednn) {
      benchmark::DoNotOptimize(op->Run({op_in, std::vector<Tensor*>(op_in.size(), nullptr), LayoutSet::All()}));
    } else {
      benchmark::DoNotOptimize(ops::ForwardLayer(layer, none, ref_in));
    }
  }
}

// The shapes realesr-animevideov3-x2 / -x4 and realesrgan-x4plus meet on a 200x200 tile
// (64x64 for x4plus, padded to 84).
const LayerCase kPixelShuffleX2{"PixelShuffle", "0=2", {{12, 220, 220}}, false};
const LayerCase kPixelShuffleX4{"PixelShuffle", "0=4", {{48, 220, 220}}, false};
const LayerCase kInterpInputX4{"Interp", "0=1 1=4.0 2=4.0", {{3, 220, 220}}, false};
const LayerCase kInterpBlockedX2{"Interp", "0=1 1=2.0 2=2.0", {{64, 168, 168}}, true};
const LayerCase kEltwiseSum{"Eltwise", "0=1 -23301=2,0.2,1.0", {{64, 84, 84}, {64, 84, 84}}, true};
const LayerCase kConcat{"Concat", "", {{64, 84, 84}, {32, 84, 84}, {32, 84, 84}, {32, 84, 84}}, true};

// `variant`: "" (oneDNN's choices), "winograd", "unfused", or a forced layout name.
void BM_Network(benchmark::State& state, const std::string& name, int size, const std::string& variant = "") {
  OneDnnBackendOptions options;
  if (variant == "winograd") options.winograd = true;
  if (variant == "unfused") options.fuse = false;
  if (auto layout = ParseLayout(variant)) options.layout = *layout;
  BackendSet backends{std::make_shared<OneDnnBackend>(options), std::make_shared<ReferenceBackend>()};
  auto manifest = ReadManifest(DefaultModelDir());
  if (!manifest.ok()) {
    state.SkipWithError(manifest.status().message().c_str());
    return;
  }
  const ModelEntry* entry = nullptr;
  for (const auto& e : *manifest)
    if (e.name == name) entry = &e;
  auto up = ModelUpscaler::Load(DefaultModelDir(), *entry, 0, backends);
  if (!up.ok()) {
    state.SkipWithError(up.status().message().c_str());
    return;
  }
  state.SetLabel(OneDnnBackend::EffectiveIsa() + (variant.empty() ? "" : " " + variant));
  Tensor in = Textured(3, size, size);
  (void)(*up)->RunPlanar(in, Deadline());  // warm: primitives created
  double seconds = 0;
  for (auto _ : state) {
    auto start = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize((*up)->RunPlanar(in, Deadline()));
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  const double per_run = seconds / static_cast<double>(state.iterations());
  // FLOPs of one pass, counted by the executor on the same tiles.
  auto model = ncnn::LoadModel(DefaultModelDir(), name);
  GraphExecutor counter(*model, *backends.backend, backends.fallback.get());
  const TileGeometry g = GeometryFor(*entry);
  const int tile = size + 2 * g.prepadding + (g.align - size % g.align) % g.align;
  RunStats stats;
  (void)counter.Run(Textured(3, tile, tile), Deadline(), &stats);
  state.counters["gflops"] = static_cast<double>(stats.conv_flops) / per_run / 1e9;
  RunStats warm;  // the first run above also created the primitives
  (void)counter.Run(Textured(3, tile, tile), Deadline(), &warm);
  for (const auto& [type, ms] : warm.ms_by_layer_type) state.counters["ms_" + type] = ms;
  state.counters["ms_per_mpx"] = per_run * 1e3 / (static_cast<double>(size) * size / 1e6);
}

BENCHMARK(BM_RooflineConv)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK_CAPTURE(BM_PReluBlocked, reference_in_place, false)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_PReluBlocked, onednn_in_place, true)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_LightLayer, pixelshuffle_x2_reference, kPixelShuffleX2, false)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_LightLayer, pixelshuffle_x2_onednn, kPixelShuffleX2, true)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_LightLayer, pixelshuffle_x4_reference, kPixelShuffleX4, false)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_LightLayer, pixelshuffle_x4_onednn, kPixelShuffleX4, true)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_LightLayer, interp_input_x4_reference, kInterpInputX4, false)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_LightLayer, interp_input_x4_onednn, kInterpInputX4, true)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_LightLayer, interp_blocked_x2_reference, kInterpBlockedX2, false)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_LightLayer, interp_blocked_x2_onednn, kInterpBlockedX2, true)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_LightLayer, eltwise_sum_reference, kEltwiseSum, false)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_LightLayer, eltwise_sum_onednn, kEltwiseSum, true)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_LightLayer, concat_reference, kConcat, false)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_LightLayer, concat_onednn, kConcat, true)->Unit(benchmark::kMillisecond)->UseRealTime();
// 200x200 is one tile at the default tile size, so the FLOP count above is exact.
BENCHMARK_CAPTURE(BM_Network, realesr_animevideov3_x2, "realesr-animevideov3-x2", 200)
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK_CAPTURE(BM_Network, realesr_animevideov3_x4, "realesr-animevideov3-x4", 200)
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK_CAPTURE(BM_Network, up2x_conservative, "up2x-conservative", 200)
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
BENCHMARK_CAPTURE(BM_Network, realesrgan_x4plus, "realesrgan-x4plus", 64)
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
// The same networks with oneDNN's Winograd convolutions where it has them, and unfused.
BENCHMARK_CAPTURE(BM_Network, realesr_animevideov3_x4_winograd, "realesr-animevideov3-x4", 200, "winograd")
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK_CAPTURE(BM_Network, realesr_animevideov3_x4_unfused, "realesr-animevideov3-x4", 200, "unfused")
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK_CAPTURE(BM_Network, realesrgan_x4plus_winograd, "realesrgan-x4plus", 64, "winograd")
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK_CAPTURE(BM_Network, realesrgan_x4plus_unfused, "realesrgan-x4plus", 64, "unfused")
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
