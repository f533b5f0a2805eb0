// The prepared GPU check (scripts/gpu-check, docs/gpu.md): one stripped
// program — the engine, the CUDA backend and the reference kernels; no oneDNN,
// no image libraries, cudart linked statically, cuDNN used when the machine has
// it — that prints every figure issue 15 asks for on a GPU machine:
//   1. what it found: driver, runtime, device, cuDNN (or why none);
//   2. the golden images against the float64 oracle's, every family, fp32 and
//      fp16 (>= 50 dB and >= 45 dB);
//   3. a forced small --vram-budget on a large image: retries, completion, and
//      bytes identical to the unconstrained run;
//   4. 50 successive requests on one loaded model: device memory before/after;
//   5. speed: ms per input megapixel on 1920x1080 for three models in fp16 and
//      fp32, frames/s of realesr-animevideov3-x2 in fp16, GPU utilisation.
// Inputs are raw RGB8 files decoded beforehand ("TRGB", u32 width, u32 height,
// pixels); exit status 0 when every check passed, 1 when one failed, 2 when no
// GPU could be used.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/backends/cuda/cuda_backend.h"
#include "engine/backends/reference_backend.h"
#include "engine/model_catalog.h"
#include "engine/model_upscaler.h"

namespace tessera::engine {
namespace {

using Clock = std::chrono::steady_clock;

struct RawImage {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

bool ReadRaw(const std::string& path, RawImage* image) {
  std::ifstream in(path, std::ios::binary);
  char magic[4];
  uint32_t w = 0, h = 0;
  if (!in.read(magic, 4) || std::memcmp(magic, "TRGB", 4) != 0) return false;
  if (!in.read(reinterpret_cast<char*>(&w), 4) || !in.read(reinterpret_cast<char*>(&h), 4)) return false;
  image->width = static_cast<int>(w);
  image->height = static_cast<int>(h);
  image->rgb.resize(static_cast<size_t>(w) * h * 3);
  return static_cast<bool>(in.read(reinterpret_cast<char*>(image->rgb.data()), static_cast<std::streamsize>(image->rgb.size())));
}

Tensor ToPlanar(const RawImage& image) {
  Tensor t = Tensor::Chw(3, image.height, image.width);
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      for (int q = 0; q < 3; ++q) t.at(q, y, x) = image.rgb[(static_cast<size_t>(y) * image.width + x) * 3 + q] / 255.f;
    }
  }
  return t;
}

// The engine's rounding to 8 bits (ModelUpscaler::Run).
std::vector<uint8_t> ToBytes(const Tensor& t) {
  std::vector<uint8_t> out(static_cast<size_t>(t.w) * t.h * 3);
  for (int y = 0; y < t.h; ++y) {
    for (int x = 0; x < t.w; ++x) {
      for (int q = 0; q < 3; ++q) {
        float v = std::floor(t.at(q, y, x) * 255.f + 0.5f);
        out[(static_cast<size_t>(y) * t.w + x) * 3 + q] = static_cast<uint8_t>(std::min(std::max(v, 0.f), 255.f));
      }
    }
  }
  return out;
}

double Psnr(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = double(a[i]) - b[i];
    sum += d * d;
  }
  const double mse = sum / static_cast<double>(a.size());
  return mse == 0 ? 99.0 : 10 * std::log10(255.0 * 255.0 / mse);
}

std::string Shell(const std::string& command) {
  std::string out;
  if (FILE* p = popen((command + " 2>/dev/null").c_str(), "r")) {
    char buffer[512];
    while (fgets(buffer, sizeof buffer, p) != nullptr) out += buffer;
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

double MibUsedOnDevice() {
  size_t free_bytes = 0, total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) return -1;
  return static_cast<double>(total_bytes - free_bytes) / (1 << 20);
}

struct Check {
  std::string model_dir;
  std::string data_dir;
  int device = 0;
  int failures = 0;
  bool reference = false;  // --reference: the goldens on the host's reference kernels (checks the harness itself)
  std::map<std::string, ModelEntry> entries;

  Result<BackendSet> Backends(DataType dtype, uint64_t budget) const {
    if (reference) return BackendSet{std::make_shared<ReferenceBackend>(), nullptr};
    cuda::CudaBackendOptions options;
    options.dtype = dtype;
    options.vram_budget_bytes = budget;
    Result<std::shared_ptr<cuda::CudaBackend>> backend = cuda::CudaBackend::Create(device, options);
    if (!backend.ok()) return backend.status();
    return BackendSet{std::move(backend).value(), std::make_shared<ReferenceBackend>()};
  }

  Result<std::unique_ptr<ModelUpscaler>> Load(const std::string& name, DataType dtype, int tile, uint64_t budget = 0) {
    auto it = entries.find(name);
    if (it == entries.end()) return Status(StatusCode::kNotFound, name + " is not in the bundle");
    Result<BackendSet> set = Backends(dtype, budget);
    if (!set.ok()) return set.status();
    auto up = ModelUpscaler::Load(model_dir, it->second, tile, *set);
    if (!up.ok()) return up.status();
    MemoryPlanOptions plan;
    auto backend = set->backend;
    plan.probe = [backend]() -> std::optional<uint64_t> {
      const BackendMemory m = backend->ProbeMemory();
      return m.known ? std::optional<uint64_t>(m.free_bytes) : std::nullopt;
    };
    (*up)->SetMemoryPlan(plan, nullptr);
    return up;
  }

  void Fail(const std::string& what) {
    std::printf("FAIL %s\n", what.c_str());
    ++failures;
  }

  void Goldens() {
    std::printf("\n== goldens against the float64 oracle (fp32 >= 50 dB, fp16 >= 45 dB)\n");
    std::ifstream list(data_dir + "/goldens.txt");
    std::string model, input_file, golden_file;
    std::map<std::string, std::vector<std::pair<std::string, std::string>>> by_model;
    while (list >> model >> input_file >> golden_file) by_model[model].push_back({input_file, golden_file});
    if (by_model.empty()) Fail("no goldens in " + data_dir + "/goldens.txt");
    for (const auto& [name, cases] : by_model) {
      for (DataType dtype : {DataType::kF32, DataType::kF16}) {
        if (reference && dtype == DataType::kF16) continue;
        const char* precision = reference ? "reference" : dtype == DataType::kF32 ? "fp32" : "fp16";
        auto up = Load(name, dtype, 0);
        if (!up.ok()) {
          Fail(name + " " + precision + ": " + up.status().ToString());
          continue;
        }
        double worst = 99;
        std::string worst_case;
        for (const auto& [in_file, golden_file_name] : cases) {
          RawImage in, golden;
          if (!ReadRaw(data_dir + "/" + in_file, &in) || !ReadRaw(data_dir + "/" + golden_file_name, &golden)) {
            Fail("cannot read " + in_file + " or " + golden_file_name);
            continue;
          }
          Result<Tensor> out = (*up)->RunPlanar(ToPlanar(in), Deadline());
          if (!out.ok()) {
            Fail(name + " " + precision + " " + in_file + ": " + out.status().ToString());
            continue;
          }
          if (out->w != golden.width || out->h != golden.height) {
            Fail(name + " " + in_file + ": output size differs from the golden");
            continue;
          }
          const double psnr = Psnr(ToBytes(*out), golden.rgb);
          if (psnr < worst) worst = psnr, worst_case = in_file;
        }
        const double floor_db = dtype == DataType::kF32 ? 50 : 45;
        std::printf("%-28s %s worst %6.2f dB (%s) over %zu images %s\n", name.c_str(), precision, worst,
                    worst_case.c_str(), cases.size(), worst >= floor_db ? "ok" : "BELOW");
        if (worst < floor_db) Fail(name + " " + precision + " below " + std::to_string(floor_db) + " dB");
      }
    }
  }

  static Tensor Synthetic(int w, int h) {
    Tensor t = Tensor::Chw(3, h, w);
    for (int q = 0; q < 3; ++q) {
      for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
          t.at(q, y, x) = 0.5f + 0.5f * std::sin(0.031f * x * (q + 1) + 0.017f * y) * std::cos(0.007f * (x + y));
        }
      }
    }
    return t;
  }

  void Budget() {
    std::printf("\n== a forced 64 MiB VRAM budget on a 1920x1080 image (realesr-animevideov3-x2, fp16)\n");
    const Tensor frame = Synthetic(1920, 1080);
    std::vector<float> unconstrained;
    for (uint64_t budget : {uint64_t{0}, uint64_t{64} << 20}) {
      auto up = Load("realesr-animevideov3-x2", DataType::kF16, 0, budget);
      if (!up.ok()) {
        Fail("budget run: " + up.status().ToString());
        return;
      }
      TilingReport report;
      const auto start = Clock::now();
      Result<Tensor> out = (*up)->RunPlanar(frame, Deadline(), nullptr, &report);
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
      if (!out.ok()) {
        Fail("budget " + std::to_string(budget >> 20) + " MiB: " + out.status().ToString());
        return;
      }
      std::printf("budget %s: %zu tiles, %zu chunks, %d OOM retries, tiles %s (largest batch %zu), %.0f ms\n",
                  budget == 0 ? "none  " : "64 MiB", report.tiles, report.chunks, report.oom_retries,
                  report.tiles_on_device ? "cut on the device" : "through the host", report.largest_batch, ms);
      if (budget == 0) {
        unconstrained.assign(out->data.begin(), out->data.end());
      } else {
        const bool same = std::equal(unconstrained.begin(), unconstrained.end(), out->data.begin(), out->data.end());
        // The unconstrained run cuts tiles on the device in batches; under 64 MiB
        // the images do not fit and tiles go through the host one at a time.
        std::printf("output byte-identical to the unconstrained run: %s\n", same ? "yes" : "NO");
        if (!same) Fail("the budget changed the output");
      }
    }
  }

  void SteadyMemory() {
    std::printf("\n== 50 successive requests on one loaded model (realesr-animevideov3-x4, fp16, 640x360)\n");
    auto up = Load("realesr-animevideov3-x4", DataType::kF16, 0);
    if (!up.ok()) {
      Fail("steady memory: " + up.status().ToString());
      return;
    }
    const Tensor frame = Synthetic(640, 360);
    if (!(*up)->RunPlanar(frame, Deadline()).ok()) Fail("first request failed");
    const double before = MibUsedOnDevice();
    const std::string smi_before = Shell("nvidia-smi --query-gpu=memory.used --format=csv,noheader -i " + std::to_string(device));
    for (int i = 0; i < 50; ++i) {
      Result<Tensor> out = (*up)->RunPlanar(frame, Deadline());
      if (!out.ok()) {
        Fail("request " + std::to_string(i) + ": " + out.status().ToString());
        return;
      }
    }
    const double after = MibUsedOnDevice();
    const std::string smi_after = Shell("nvidia-smi --query-gpu=memory.used --format=csv,noheader -i " + std::to_string(device));
    std::printf("device memory used after request 1: %.0f MiB, after request 51: %.0f MiB (nvidia-smi: %s -> %s)\n",
                before, after, smi_before.empty() ? "n/a" : smi_before.c_str(), smi_after.empty() ? "n/a" : smi_after.c_str());
    if (after > before + 16) Fail("device memory grew over 50 requests");
  }

  void Speed(int seconds_per_case) {
    std::printf("\n== speed on a 1920x1080 input (RunPlanar: the frame uploaded once, tiles cut, batched and placed "
                "on the device, the output downloaded once; no image coding)\n");
    const Tensor frame = Synthetic(1920, 1080);
    const double megapixels = 1920.0 * 1080.0 / 1e6;
    std::atomic<bool> sampling{true};
    std::vector<int> utilisation;
    std::thread sampler([&] {
      while (sampling.load()) {
        const std::string u = Shell("nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -i " + std::to_string(device));
        if (!u.empty()) utilisation.push_back(std::atoi(u.c_str()));
        std::this_thread::sleep_for(std::chrono::milliseconds(500));  // a sampling period, not synchronisation
      }
    });
    for (const char* name : {"realesr-animevideov3-x2", "realesr-animevideov3-x4", "realesrgan-x4plus", "up2x-conservative"}) {
      for (DataType dtype : {DataType::kF16, DataType::kF32}) {
        auto up = Load(name, dtype, 512);
        if (!up.ok()) {
          Fail(std::string(name) + ": " + up.status().ToString());
          continue;
        }
        if (!(*up)->RunPlanar(frame, Deadline()).ok()) {  // warm: algorithms chosen, weights uploaded
          Fail(std::string(name) + " warm-up failed");
          continue;
        }
        std::vector<double> ms;
        const auto until = Clock::now() + std::chrono::seconds(seconds_per_case);
        while (ms.size() < 3 || (Clock::now() < until && ms.size() < 50)) {
          const auto start = Clock::now();
          if (!(*up)->RunPlanar(frame, Deadline()).ok()) break;
          ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
        }
        std::sort(ms.begin(), ms.end());
        const double median = ms.empty() ? 0 : ms[ms.size() / 2];
        std::printf("%-26s %s median %8.1f ms/frame = %7.1f ms per input MP = %6.2f frames/s (%zu runs)\n", name,
                    dtype == DataType::kF16 ? "fp16" : "fp32", median, median / megapixels,
                    median > 0 ? 1000.0 / median : 0.0, ms.size());
      }
    }
    sampling = false;
    sampler.join();
    if (!utilisation.empty()) {
      std::sort(utilisation.begin(), utilisation.end());
      std::printf("GPU utilisation during the speed runs (nvidia-smi, every 0.5 s): median %d%%, max %d%%\n",
                  utilisation[utilisation.size() / 2], utilisation.back());
    } else {
      std::printf("GPU utilisation: nvidia-smi not available\n");
    }
    std::printf("target: realesr-animevideov3-x2 fp16 >= 60 frames/s on one H100/H200-class GPU\n");
  }
};

int Main(int argc, char** argv) {
  Check check;
  check.model_dir = argc > 1 ? argv[1] : "models";
  check.data_dir = argc > 2 ? argv[2] : "data";
  const int seconds = argc > 3 ? std::atoi(argv[3]) : 15;
  check.reference = argc > 4 && std::string(argv[4]) == "--reference";
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  std::printf("== tessera gpu check\ncudart %d (static), driver supports CUDA %d\n", runtime, driver);
  std::string cudnn_why;
  const cuda::CudnnLibrary* cudnn = cuda::LoadCudnn(&cudnn_why);
  std::printf("cuDNN: %s\n", cudnn != nullptr ? cuda::CudnnVersionText(cudnn->version).c_str()
                                               : ("none (" + cudnn_why + "): convolutions on the direct kernels").c_str());
  if (check.reference) {
    Result<std::vector<ModelEntry>> models = ReadManifest(check.model_dir);
    if (!models.ok()) return 1;
    for (const ModelEntry& e : *models) check.entries[e.name] = e;
    check.Goldens();
    std::printf("\n== reference kernels: %d failure(s)\n", check.failures);
    return check.failures == 0 ? 0 : 1;
  }
  if (cuda::Availability().device_count == 0) {
    std::printf("no usable CUDA device: %s\n", cuda::Availability().reason.c_str());
    return 2;
  }
  Result<cuda::CudaDeviceProperties> props = cuda::DeviceProperties(check.device);
  if (!props.ok()) {
    std::printf("cuda:0: %s\n", props.status().ToString().c_str());
    return 2;
  }
  std::printf("cuda:%d: %s, compute capability %d.%d, %.1f GiB\n", check.device, props->name.c_str(), props->major,
              props->minor, static_cast<double>(props->total_bytes) / (1ull << 30));
  Result<std::vector<ModelEntry>> manifest = ReadManifest(check.model_dir);
  if (!manifest.ok()) {
    std::printf("%s\n", manifest.status().ToString().c_str());
    return 1;
  }
  for (const ModelEntry& e : *manifest) check.entries[e.name] = e;
  const auto start = Clock::now();
  check.Goldens();
  check.Budget();
  check.SteadyMemory();
  check.Speed(seconds);
  std::printf("\n== %s: %d failure(s), %.0f s\n", check.failures == 0 ? "PASS" : "FAIL", check.failures,
              std::chrono::duration<double>(Clock::now() - start).count());
  return check.failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace tessera::engine

int main(int argc, char** argv) { return tessera::engine::Main(argc, argv); }
