// `tessera worker`: flag parsing only; the behaviour lives in src/worker/.
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <memory>

#include "cli/commands.h"
#include "engine/lanczos_upscaler.h"
#include "util/byte_size.h"
#include "util/duration_text.h"
#include "util/log.h"
#include "worker/file_batch.h"
#include "worker/worker_main.h"

namespace tessera::cli {
namespace {

struct WorkerFlags {
  bool keep_alive = false;
  std::string mode;
  std::string protocol = "2";
  int batch_size = -1;
  std::string max_message_bytes = "256MiB";
  std::string max_image_bytes = "64MiB";
  std::string ram_budget;
  std::string precision;
  std::string vram_budget;
  std::string device;
  std::string request_timeout = "0";
  std::string pool_idle_release = "30s";
  bool no_gpu_fallback = false;
  bool no_plan_cache = false;
  std::string format = "png";
  std::string engine = "lanczos";
  std::string input;
  std::string output;
  int64_t max_loaded_model_mb = 0;
  int64_t max_chunk_mb = 0;
  std::string warmup;
  worker::WorkerOptions options;
};

// Turns string flags into options; a clear message and exit code 2 on bad input.
int Finish(WorkerFlags& f) {
  auto fail = [](const std::string& message) {
    LogError("invalid_flags").Field("error", message);
    return 2;
  };
  if (f.batch_size >= 0) {
    return fail(
        "--batch-size belonged to protocol v1, which was removed; batches are framed in protocol v2 "
        "requests (see docs/protocol.md)");
  }
  if (f.protocol != "2" && f.protocol != "v2") {
    return fail("--protocol " + f.protocol + " is not supported; only protocol v2 exists");
  }
  worker::WorkerOptions& o = f.options;
  for (auto [flag, text, target] :
       {std::tuple{"--max-message-bytes", &f.max_message_bytes, &o.limits.max_message_bytes},
        std::tuple{"--max-image-bytes", &f.max_image_bytes, &o.limits.max_image_bytes}}) {
    Result<uint64_t> size = ParseByteSize(*text);
    if (!size.ok()) return fail(std::string(flag) + ": " + size.status().message());
    *target = *size;
  }
  if (!f.ram_budget.empty()) {
    Result<uint64_t> size = ParseByteSize(f.ram_budget);
    if (!size.ok()) return fail("--ram-budget: " + size.status().message());
    if (*size == 0) return fail("--ram-budget must be above 0");
    o.limits.ram_budget_bytes = *size;
  }
  if (o.limits.max_message_bytes < protocol::kHeaderSize || o.limits.max_message_bytes > 0xFFFFFFFFull) {
    return fail("--max-message-bytes must be between 16 bytes and 4 GiB");
  }
  Result<std::chrono::milliseconds> timeout = ParseDuration(f.request_timeout);
  if (!timeout.ok()) return fail("--request-timeout: " + timeout.status().message());
  o.request_timeout = *timeout;
  Result<std::chrono::milliseconds> idle = ParseDuration(f.pool_idle_release);
  if (!idle.ok()) return fail("--pool-idle-release: " + idle.status().message());
  o.pool_idle_release = *idle;
  o.gpu_fallback = !f.no_gpu_fallback;
  Result<engine::BackendOptions> backend = engine::ParseBackendFlags(f.precision, f.vram_budget);
  if (!backend.ok()) return fail(backend.status().message());
  o.backend = *backend;
  o.backend.pool_idle_release = o.pool_idle_release;  // the GPU's cached blocks too
  if (!f.device.empty()) {
    Result<engine::Device> device = engine::ParseDevice(f.device);
    if (!device.ok()) return fail("--device: " + device.status().message());
    o.device = *device;
    // A named device: refuse now what it would refuse per request.
    if (Status usable = engine::CheckBackendOptions(*o.device, o.backend); !usable.ok()) return fail(usable.message());
  } else if (engine::UsableDeviceCount(engine::Device::Kind::kCuda) == 0) {
    // Only the CPU can run here: refuse now what it would refuse per request.
    if (Status usable = engine::CheckBackendOptions(engine::Device::Cpu(), o.backend); !usable.ok()) {
      return fail(usable.message());
    }
  }
  o.plan_cache = !f.no_plan_cache;
  auto format = imaging::ParseOutputFormat(f.format);
  if (!format) return fail("--format " + f.format + " is not one of png, jpg, webp");
  o.format = *format;
  if (o.tile_size != 0 && o.tile_size < 32) return fail("--tile-size must be 0 (automatic) or at least 32");
  if (f.max_loaded_model_mb < 0) return fail("--max-loaded-model-mb must be 0 (no bound) or more");
  if (f.max_chunk_mb < 0) return fail("--max-chunk-mb must be 0 (no cap) or more");
  o.max_chunk_bytes = static_cast<uint64_t>(f.max_chunk_mb) << 20;
  if (const char* safe = std::getenv("TESSERA_SAFE_MODE"); safe != nullptr && std::string(safe) == "1") {
    o.safe_mode = true;
  }
  o.max_loaded_model_bytes = static_cast<uint64_t>(f.max_loaded_model_mb) << 20;
  o.warmup.clear();
  for (size_t start = 0; start <= f.warmup.size();) {
    size_t comma = f.warmup.find(',', start);
    if (comma == std::string::npos) comma = f.warmup.size();
    std::string name = f.warmup.substr(start, comma - start);
    if (!name.empty()) o.warmup.push_back(std::move(name));
    start = comma + 1;
  }
  if (Result<double> factor = engine::LanczosUpscaler::ParseFactor(o.scale); !factor.ok()) {
    return fail("--scale: " + factor.status().message());
  }

  const bool batch_mode = f.mode == "batch";
  if (batch_mode) {
    if (f.input.empty() || f.output.empty()) return fail("--mode batch needs --input DIR and --output DIR");
    auto engine = protocol::EngineFromName(f.engine);
    if (!engine) return fail("--engine " + f.engine + " is not one of realesrgan, realcugan, waifu2x, lanczos");
    worker::FileBatchSpec spec;
    spec.input = f.input;
    spec.output = f.output;
    spec.engine = *engine;
    return worker::RunFileBatch(o, spec);
  }
  if (f.mode.empty() && !f.keep_alive) {
    return fail(
        "choose a mode: --keep-alive (protocol v2 on stdin/stdout), --mode stdin (one request) or "
        "--mode batch --input DIR --output DIR");
  }
  return worker::RunStdinWorker(o, f.keep_alive);
}

}  // namespace

void AddWorkerCommand(CLI::App& app, CommandRunner* runner) {
  auto flags = std::make_shared<WorkerFlags>();
  worker::WorkerOptions& o = flags->options;
  CLI::App* cmd =
      app.add_subcommand("worker",
                         "Serve image batches over protocol v2 (BRDR) on stdin/stdout, or process a directory.\n"
                         "  tessera worker --keep-alive          serve requests until stdin closes\n"
                         "  tessera worker --mode stdin          answer one request, then exit\n"
                         "  tessera worker --mode batch -i IN -o OUT   process every image of a directory\n"
                         "stdout carries protocol frames only; logs are key=value lines on stderr.\n"
                         "Wire format and status codes: docs/protocol.md; flags in depth: docs/worker.md.");
  cmd->add_flag("--keep-alive", flags->keep_alive, "Serve requests until end of stdin (protocol v2)");
  cmd->add_option("--mode", flags->mode,
                  "stdin: protocol v2 on stdin/stdout (one request unless --keep-alive); "
                  "batch: --input directory to --output directory")
      ->check(CLI::IsMember({"stdin", "batch"}));
  cmd->add_option("--protocol", flags->protocol, "Protocol version; only 2 exists (implied by --keep-alive)")
      ->capture_default_str();
  cmd->add_option("--batch-size", flags->batch_size, "Removed with protocol v1; refused with an explanation")
      ->group("");
  cmd->add_option("--max-batch-items", o.limits.max_batch_items, "Most images in one request (LIMIT above)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100000u));
  cmd->add_option("--max-message-bytes", flags->max_message_bytes,
                  "Largest request frame; bigger frames are drained unread and answered LIMIT")
      ->capture_default_str();
  cmd->add_option("--max-image-bytes", flags->max_image_bytes, "Largest encoded image in a request")
      ->capture_default_str();
  cmd->add_option("--max-image-pixels", o.limits.max_image_pixels,
                  "Largest image in pixels, read from the header before decoding (decompression bombs get LIMIT)")
      ->capture_default_str();
  cmd->add_option("--ram-budget", flags->ram_budget,
                  "Worst-case memory one request may need (e.g. 2GiB); a batch over it is refused with LIMIT "
                  "and told how many images fit. Default: half the memory available at start");
  cmd->add_option("--request-timeout", flags->request_timeout,
                  "Per-request deadline (e.g. 30s, 500ms; 0 = none); work stops cooperatively and the request "
                  "gets TIMEOUT while the worker lives on")
      ->capture_default_str();
  cmd->add_flag("--no-gpu-fallback", flags->no_gpu_fallback,
                "Answer DEVICE_UNAVAILABLE instead of running on the CPU when the requested GPU is unusable");
  cmd->add_option("--precision", flags->precision,
                  "auto, fp32 or fp16: storage precision on GPUs (auto = fp16 with fp32 accumulation on CUDA GPUs "
                  "and Vulkan GPUs with 16-bit storage; fp32 on llvmpipe); the CPU computes in fp32 and refuses "
                  "fp16")
      ->default_str("auto");
  cmd->add_option("--vram-budget", flags->vram_budget,
                  "Most GPU memory a request may use (e.g. 6GiB); default: what the device reports free");
  cmd->add_option("--device", flags->device,
                  "cpu, cuda:N or vulkan:N: every request runs there whatever its gpu_id (gpu_id numbers the "
                  "machine's real GPUs, as `tessera devices` lists them; a CPU-type Vulkan device such as llvmpipe "
                  "runs only when named here)");
  cmd->add_option("--model-name", o.model_name,
                  "Model for engines 1-3 when a request's quality string is empty (the request's string wins): "
                  "realesrgan-x4plus, realesrgan-x4fast, realesr-animevideov3-x2|x3|x4, realesrgan-x4plus-anime; "
                  "up2x-conservative, up2x-no-denoise, up2x-denoise1x|2x|3x, up3x-conservative, up3x-no-denoise, "
                  "up3x-denoise3x, up4x-conservative, up4x-no-denoise, up4x-denoise3x; cunet-x2, "
                  "cunet-noise0|1|2|3, cunet-noise0|1|2|3-x2");
  cmd->add_option("--model-dir", o.model_dir,
                  "Where scripts/fetch-models installed the models (default: $TESSERA_MODEL_DIR or "
                  "~/.cache/tessera/models)");
  cmd->add_option("--scale", o.scale,
                  "Scale when a request's quality string is empty: the lanczos factor (0.1-16), e.g. 2 or x1.5")
      ->capture_default_str();
  cmd->add_option("--tile-size", o.tile_size,
                  "Tile edge in pixels for the model engines; 0 = automatic. Lanczos does not tile")
      ->capture_default_str();
  cmd->add_option("--format", flags->format, "Output image format, the same for every output: png, jpg or webp")
      ->capture_default_str();
  cmd->add_option("-j,--threads", o.threads, "Threads for image work and the engine; 0 = one per core")
      ->capture_default_str();
  cmd->add_option("--max-loaded-models", o.max_loaded_models,
                  "Loaded models kept for later requests; the least recently used is dropped beyond it")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1000}));
  cmd->add_option("--max-loaded-model-mb", flags->max_loaded_model_mb,
                  "Most MiB of model weights kept loaded (0 = no bound); the model just loaded always stays")
      ->capture_default_str();
  cmd->add_flag("--stats", o.cache_stats,
                "Log after each request: event=model_cache hits= misses= joined= loads= load_failures= "
                "evictions= resident_mb= entries=, and event=buffer_pool hits= misses= returned= cached_mb= "
                "in_use_mb=");
  cmd->add_option("--warmup", flags->warmup,
                  "Models to load in the background at start, comma-separated (e.g. "
                  "realesr-animevideov3-x2,up2x-conservative); requests are served meanwhile, a request for a "
                  "model being loaded waits for it; failures are logged, never fatal");
  cmd->add_option("--cache-dir", o.cache_dir,
                  "Compiled-plan cache: parsed models with their fp32 weights, one file per model, tile size and "
                  "CPU, read instead of parsing the model again (default ~/.cache/tessera/plans, created when "
                  "missing)");
  cmd->add_flag("--no-plan-cache", flags->no_plan_cache,
                "Load models from their .param/.bin only: neither read nor write the plan cache");
  cmd->add_option("--engine", flags->engine, "Engine for --mode batch: realesrgan, realcugan, waifu2x or lanczos")
      ->capture_default_str();
  cmd->add_option("-i,--input", flags->input, "Input directory for --mode batch");
  cmd->add_option("-o,--output", flags->output, "Output directory for --mode batch");
  cmd->add_option("--pool-idle-release", flags->pool_idle_release,
                  "Free tensor blocks are kept for reuse across tiles and requests, and returned to the system "
                  "after this long unused (e.g. 30s, 2m; 0 = at the next sweep)")
      ->capture_default_str();
  cmd->add_flag("--safe-mode", o.safe_mode,
                "Chunks of tiles take at most 28 % of the free memory instead of 45 % (also TESSERA_SAFE_MODE=1)");
  cmd->add_option("--max-chunk-mb", flags->max_chunk_mb,
                  "Most MiB one chunk of tiles may take, whatever the free memory; 0 = the first budget of each "
                  "image (free memory x fraction, read when its plan is made)")
      ->capture_default_str();
  cmd->add_option("--oom-retries", o.oom_retries,
                  "After an out-of-memory, retries of the chunk with 0.7x its size (at least one tile, 16 MiB) "
                  "before the image fails with OUT_OF_MEMORY")
      ->capture_default_str()
      ->check(CLI::Range(0, 100));
  cmd->add_option("--pipeline-depth", o.pipeline_depth,
                  "Images waiting between the decode, process and encode stages of a request: image i+1 is "
                  "decoded and i-1 encoded while i is processed; 0 = one image after another; -1 = automatic "
                  "(1 with 2 cores or more, else 0). A batch whose extra images in flight do not fit "
                  "--ram-budget runs one image after another")
      ->capture_default_str()
      ->check(CLI::Range(-1, 16));
  cmd->add_flag("--profiling", o.profiling,
                "Add to each request line: wait_ms (waiting for the frame), validate_ms, probe_ms, "
                "slowest_image_ms (sequential runs), pipelined, pixels_ms (decode+process+encode wall time), "
                "write_ms, payload_mb, output_mb, estimate_mb, input_mpx, output_mpx, "
                "rss_before_mb, rss_after_mb");
  cmd->add_flag("--log-protocol", o.log_protocol, "Log each frame's length and a hex dump of its 16-byte header");
  cmd->callback([flags, runner] { *runner = [flags] { return Finish(*flags); }; });
}

}  // namespace tessera::cli
