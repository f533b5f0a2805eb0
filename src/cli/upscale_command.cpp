// `tessera upscale`: flag parsing only, with the reference tools' flag letters;
// the work is worker::RunFileBatch for images, RunVideoUpscale for a video
// (recognised by its content: video::LooksLikeVideo).
#include <CLI/CLI.hpp>

#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "cli/upscale_video.h"
#include "engine/backend_registry.h"
#include "engine/device.h"
#include "engine/model_catalog.h"
#include "util/log.h"
#include "video/video_probe.h"
#include "video/video_segments.h"
#include "worker/engine_resolver.h"
#include "worker/file_batch.h"

namespace tessera::cli {
namespace {

struct UpscaleFlags {
  std::string input;
  std::string output;
  std::string model;
  std::string scale = "4";
  int tile = 0;
  int gpu = -1;
  std::string device;
  std::string precision;
  std::string vram_budget;
  std::string format;
  int threads = 0;
  std::string model_dir;
  // Videos only.
  std::string codec = "libx264";
  int crf = -1;  // -1: the codec's default (video::DefaultCrf)
  std::string preset;
  std::string pix_fmt;
  uint64_t max_video_pixels = video::VideoLimits{}.max_pixels;
  int64_t max_video_frames = 0;
  std::string range;            // "START:END" in the video stream's time base; empty: the whole video
  int64_t progress_total = 0;   // > 0: machine-readable progress lines against this many frames
  bool video_only = false;
};

int RunUpscale(const UpscaleFlags& f) {
  auto fail = [](const std::string& message) {
    LogError("invalid_flags").Field("error", message);
    return 2;
  };
  worker::WorkerOptions o;
  o.tile_size = f.tile;
  o.threads = f.threads;
  o.model_dir = f.model_dir.empty() ? engine::DefaultModelDir() : f.model_dir;
  o.scale = f.scale;
  if (o.tile_size != 0 && o.tile_size < 32) return fail("-t must be 0 (automatic) or at least 32");
  worker::FileBatchSpec spec;
  spec.input = f.input;
  spec.output = f.output;
  spec.show_progress = true;
  if (f.model == "lanczos") {
    spec.engine = protocol::Engine::kLanczos;
    spec.quality = f.scale;
  } else if (f.model.empty()) {
    spec.engine = protocol::Engine::kRealEsrgan;
    spec.quality = "x" + f.scale;
  } else {
    auto manifest = engine::ReadManifest(o.model_dir);
    if (!manifest.ok()) return fail(manifest.status().message());
    const engine::ModelEntry* entry = nullptr;
    for (const auto& e : *manifest) {
      if (e.name == f.model) entry = &e;
    }
    if (entry == nullptr) return fail("unknown model '" + f.model + "'; see `tessera upscale --help`");
    spec.engine = worker::EngineForFamily(entry->family);
    spec.quality = f.model;
  }
  if (f.gpu < -1) return fail("-g must be -1 (CPU) or a GPU index");
  spec.gpu_id = f.gpu;
  // The machine's GPUs, probed only when a GPU number is given: a CPU run
  // never opens the GPU drivers.
  const auto gpus = [] { return engine::NumberedGpus(engine::MachineGpus()); };
  if (!f.device.empty()) {
    // --device names a device; -g numbers the machine's real GPUs
    // (engine/gpu_chain.h). Both given, they must be the same device.
    Result<engine::Device> device = engine::ParseDevice(f.device);
    if (!device.ok()) return fail("--device: " + device.status().message());
    if (f.gpu != -1) {
      const std::vector<engine::GpuEntry> numbered_gpus = gpus();
      const bool exists = static_cast<size_t>(f.gpu) < numbered_gpus.size();
      const bool same = exists && numbered_gpus[f.gpu].device == *device;
      const std::string numbered = exists ? numbered_gpus[f.gpu].device.Name() : std::string("no GPU here");
      if (!same) {
        return fail("-g " + std::to_string(f.gpu) + " numbers " + numbered + " (see `tessera devices`); --device " +
                    f.device + " disagrees: give one of them");
      }
    }
    o.device = *device;
  }
  Result<engine::BackendOptions> backend = engine::ParseBackendFlags(f.precision, f.vram_budget);
  if (!backend.ok()) return fail(backend.status().message());
  o.backend = *backend;
  if (o.device) {
    // A named device: refuse now what it would refuse per request.
    if (Status usable = engine::CheckBackendOptions(*o.device, o.backend); !usable.ok()) return fail(usable.message());
  } else if (f.gpu < 0 || gpus().empty()) {
    // Only the CPU runs (-g -1, or no GPU here): refuse now what it would refuse per request.
    if (Status usable = engine::CheckBackendOptions(engine::Device::Cpu(), o.backend); !usable.ok()) {
      return fail(usable.message());
    }
  }
  if (video::LooksLikeVideo(f.input)) {
    if (!f.format.empty()) return fail("-f is for images; a video's container follows the output's extension");
    VideoUpscaleRequest request;
    request.worker = o;
    request.engine = spec.engine;
    request.quality = spec.quality;
    request.gpu_id = spec.gpu_id;
    request.video.input = f.input;
    request.video.output = f.output;
    request.video.encode.codec = f.codec;
    if (f.crf >= 0) request.video.encode.crf = f.crf;
    request.video.encode.preset = f.preset;
    request.video.encode.pix_fmt = f.pix_fmt;
    request.video.limits.max_pixels = f.max_video_pixels;
    request.video.limits.max_frames = f.max_video_frames;
    if (!f.range.empty()) {
      auto range = video::ParseVideoRange(f.range);
      if (!range.ok()) return fail(range.status().message());
      request.video.range = *range;
    }
    request.progress_total = f.progress_total;
    request.video.video_only = f.video_only;
    return RunVideoUpscale(std::move(request));
  }
  std::string format = f.format;
  if (format.empty()) {
    // Without -f, the output's extension decides, as the reference tools do.
    std::string ext = std::filesystem::path(f.output).extension().string();
    format = ext.empty() ? "png" : ext.substr(1);
  }
  auto parsed = imaging::ParseOutputFormat(format);
  if (!parsed) return fail("-f " + format + " is not one of png, jpg, webp");
  o.format = *parsed;
  return worker::RunFileBatch(o, spec);
}

}  // namespace

void AddUpscaleCommand(CLI::App& app, CommandRunner* runner) {
  auto flags = std::make_shared<UpscaleFlags>();
  CLI::App* cmd = app.add_subcommand(
      "upscale",
      "Upscale an image, every image of a directory, or a video with a super-resolution model or lanczos.\n"
      "  tessera upscale -i photo.png -o big.png -n realesr-animevideov3-x2\n"
      "  tessera upscale -i frames/ -o big/ -s 4 -f webp\n"
      "  tessera upscale -i clip.mkv -o big.mp4 -n realesr-animevideov3-x2 --codec libx265 --crf 20\n"
      "A video (any container and codec ffmpeg reads; recognised by its content) is decoded, upscaled and\n"
      "encoded in one stream; audio, subtitles and chapters are copied, timestamps, colours and rotation kept.\n"
      "The output's extension picks the container: .mp4/.m4v, .mov, .mkv, .webm. Container rules: subtitles\n"
      "become mov_text in MP4/MOV (picture subtitles need .mkv), stay as they are in MKV; ffv1 only in MKV;\n"
      "WebM takes libvpx-vp9 and WebVTT only. See docs/video.md.\n"
      "Models (-n), installed by scripts/fetch-models:\n"
      "  realesrgan-x4plus  realesrgan-x4fast  realesrgan-x4plus-anime\n"
      "  realesr-animevideov3-x2  realesr-animevideov3-x3  realesr-animevideov3-x4\n"
      "  up2x-conservative  up2x-no-denoise  up2x-denoise1x  up2x-denoise2x  up2x-denoise3x\n"
      "  up3x-conservative  up3x-no-denoise  up3x-denoise3x\n"
      "  up4x-conservative  up4x-no-denoise  up4x-denoise3x\n"
      "  cunet-x2  cunet-noise0..3 (denoise only)  cunet-noise0..3-x2\n"
      "  lanczos (any -s from 0.1 to 16)");
  cmd->add_option("-i,--input", flags->input, "Input image, directory or video")->required();
  cmd->add_option("-o,--output", flags->output, "Output image, directory or video")->required();
  cmd->add_option("-n,--model-name", flags->model,
                  "Model name (list above); default: realesr-animevideov3-x<scale>");
  cmd->add_option("-s,--scale", flags->scale, "Scale, used when -n is not given (2, 3, 4) or with lanczos")
      ->capture_default_str();
  cmd->add_option("-t,--tile-size", flags->tile, "Tile edge in pixels; 0 = automatic (200)")->capture_default_str();
  cmd->add_option("-g,--gpu-id", flags->gpu,
                  "GPU number, -1 = CPU: the machine's CUDA GPUs, then its other real GPUs (discrete, then "
                  "integrated) as `tessera devices` numbers them; an unusable GPU falls back to an integrated GPU, "
                  "then the CPU, with a log line at each step saying why")
      ->capture_default_str();
  cmd->add_option("--device", flags->device,
                  "cpu, cuda:N or vulkan:N: that device (a CPU-type Vulkan device such as llvmpipe is used only "
                  "when named here); unusable, the CPU runs instead; see `tessera devices`");
  cmd->add_option("--precision", flags->precision,
                  "auto, fp32 or fp16: storage precision of feature maps on GPUs (auto = fp16 on CUDA GPUs and on "
                  "Vulkan GPUs with 16-bit storage, fp32 on llvmpipe); arithmetic is fp32; the CPU refuses fp16")
      ->default_str("auto");
  cmd->add_option("--vram-budget", flags->vram_budget,
                  "Most GPU memory to use, e.g. 4GiB or 64MiB (default: what the device has free)");
  cmd->add_option("-f,--format", flags->format, "png, jpg or webp; default: from the output's extension, else png");
  cmd->add_option("-j,--threads", flags->threads, "Threads for image work; 0 = one per core")->capture_default_str();
  cmd->add_option("--model-dir", flags->model_dir, "Model directory (default: $TESSERA_MODEL_DIR or "
                                                   "~/.cache/tessera/models)");
  cmd->add_option("--codec", flags->codec,
                  "Video encoder: libx264, libx265, libvpx-vp9, ffv1 (lossless, MKV only), or h264_nvenc, "
                  "hevc_nvenc where this libavcodec has them and an NVIDIA GPU is present")
      ->capture_default_str();
  cmd->add_option("--crf", flags->crf,
                  "Video constant quality (lower is better): x264/x265/VP9 crf, NVENC cq; default 18 (x264), "
                  "20 (x265), 30 (VP9), 19 (NVENC); not for ffv1");
  cmd->add_option("--preset", flags->preset,
                  "Video encoder preset: x264/x265 ultrafast..placebo, NVENC p1..p7, VP9 cpu-used 0..8");
  cmd->add_option("--pix-fmt", flags->pix_fmt,
                  "Video pixel format, e.g. yuv420p, yuv420p10le, yuv444p; default: the closest to the input's "
                  "that the encoder takes");
  cmd->add_option("--max-video-pixels", flags->max_video_pixels,
                  "Refuse a video whose frames have more pixels than this, before any work")
      ->capture_default_str();
  cmd->add_option("--max-video-frames", flags->max_video_frames,
                  "Refuse a video with more frames than this, before any work; 0 = no limit")
      ->capture_default_str();
  cmd->add_option("--range", flags->range,
                  "Only the frames with timestamps in [START, END) of the video stream's time base, START a "
                  "keyframe's (one segment; the server's video jobs run these); END may be empty: to the end")
      ->type_name("START:END");
  cmd->add_flag("--video-only", flags->video_only,
               "Write only the upscaled video stream (a segment of a server video job: the join copies audio and "
               "subtitles from the source)");
  cmd->add_option("--progress-total", flags->progress_total,
                  "Print a machine-readable line TESSERA_PROGRESS {\"step\":N,\"total\":TOTAL} after each frame "
                  "(for the server, which knows a segment's frame count)")
      ->type_name("TOTAL");
  cmd->callback([flags, runner] { *runner = [flags] { return RunUpscale(*flags); }; });
}

}  // namespace tessera::cli
