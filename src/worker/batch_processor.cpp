#include "worker/batch_processor.h"

#include <algorithm>
#include <chrono>
#include <functional>

#include "imaging/image_codec.h"
#include "runtime/pipeline.h"
#include "util/byte_size.h"
#include "worker/oom_fallback.h"

namespace tessera::worker {
namespace {

using Clock = std::chrono::steady_clock;

std::string Index(size_t i) { return "image " + std::to_string(i); }

Status WithIndex(size_t i, const Status& s) { return {s.code(), Index(i) + ": " + s.message()}; }

// Decoded images are normalised to 8-bit RGB(A): 4 bytes a pixel at most.
constexpr uint64_t kBytesPerPixel = 4;

}  // namespace

BatchProcessor::BatchProcessor(const WorkerOptions& options)
    : options_(options), devices_(options.gpu_fallback), engines_(options) {}

BatchOutcome BatchProcessor::Process(const protocol::Request& request, uint64_t payload_bytes,
                                     const Deadline& deadline) {
  BatchOutcome out;
  auto fail = [&out](Status s) -> BatchOutcome& {
    out.status = std::move(s);
    out.outputs.clear();
    return out;
  };

  auto device = devices_.Select(options_.device, request.gpu_id);
  if (!device.ok()) return fail(device.status());
  // A device that cannot be opened (a driver error, a lost GPU): the chain's next step.
  auto upscaler = devices_.OpenAlongChain<std::shared_ptr<const engine::Upscaler>>(
      *device, [&](const engine::Device& d) { return engines_.Resolve(request.engine, request.quality, d); });
  out.device = device->Name();
  out.device_fell_back = device->fell_back;
  if (!upscaler.ok()) return fail(upscaler.status());
  out.engine_description = (*upscaler)->Describe();

  // 1. Headers only: refuse bad and oversized images before any pixel work.
  auto t = Clock::now();
  std::vector<engine::Size> sizes;
  sizes.reserve(request.images.size());
  for (size_t i = 0; i < request.images.size(); ++i) {
    Result<imaging::ImageInfo> info = imaging::ProbeImage(request.images[i]);
    if (!info.ok()) return fail(WithIndex(i, info.status()));
    if (info->pixels() > options_.limits.max_image_pixels) {
      return fail(LimitError(Index(i) + " is " + std::to_string(info->width) + "x" + std::to_string(info->height) +
                             " = " + std::to_string(info->pixels()) + " pixels, over --max-image-pixels " +
                             std::to_string(options_.limits.max_image_pixels) + "; downscale it first"));
    }
    engine::Size size{static_cast<uint64_t>(info->width), static_cast<uint64_t>(info->height)};
    sizes.push_back(size);
    out.input_pixels += size.pixels();
    out.output_pixels += (*upscaler)->OutputSize(size).pixels();
  }
  out.timings.probe_ms = std::chrono::duration<double, std::milli>(Clock::now() - t).count();

  // 2. Worst-case memory: the request frame, every encoded output kept until the
  // response is written (bounded by the raw size), plus the largest single-image
  // working set (decoded input + engine working memory).
  uint64_t kept = 0;
  uint64_t largest_working = 0;
  uint64_t largest_input = 0;
  uint64_t largest_output = 0;
  uint64_t estimate = payload_bytes;
  size_t fitting = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const uint64_t output_raw = (*upscaler)->OutputSize(sizes[i]).pixels() * kBytesPerPixel;
    kept += output_raw;
    largest_input = std::max(largest_input, sizes[i].pixels() * kBytesPerPixel);
    largest_output = std::max(largest_output, output_raw);
    largest_working =
        std::max(largest_working, sizes[i].pixels() * kBytesPerPixel + (*upscaler)->WorkingBytes(sizes[i]));
    estimate = payload_bytes + kept + largest_working;
    if (estimate <= options_.limits.ram_budget_bytes) fitting = i + 1;
  }
  out.estimated_peak_bytes = estimate;
  if (estimate > options_.limits.ram_budget_bytes) {
    std::string advice = fitting > 0 ? "send at most " + std::to_string(fitting) + " of these images per request"
                                     : "image 0 alone does not fit; use a smaller image or scale";
    return fail(LimitError("batch needs about " + FormatBytes(estimate) + ", over --ram-budget " +
                           FormatBytes(options_.limits.ram_budget_bytes) + "; " + advice));
  }
  // Pipelined, up to depth + 1 more decoded inputs (queued, and the next being
  // decoded) and depth + 1 more upscaled images (queued, and the one being
  // encoded) are alive at once. When that does not fit, the batch runs one image
  // at a time rather than failing.
  const size_t depth = EffectivePipelineDepth(options_.pipeline_depth);
  const uint64_t pipelined_estimate = estimate + (depth + 1) * (largest_input + largest_output);
  const bool pipelined = depth > 0 && sizes.size() > 1 && pipelined_estimate <= options_.limits.ram_budget_bytes;
  if (pipelined) out.estimated_peak_bytes = pipelined_estimate;
  out.pipelined = pipelined;

  // 3. Decode, process and encode each image, in order; pipelined, image i+1 is
  // decoded and image i-1 encoded while image i is processed.
  std::vector<std::vector<uint8_t>> outputs(request.images.size());
  std::function<Result<imaging::Image>(size_t)> decode = [&](size_t i) -> Result<imaging::Image> {
    if (deadline.Expired()) {
      return Status(StatusCode::kTimeout, "request timed out after " + std::to_string(i) + " of " +
                                              std::to_string(request.images.size()) +
                                              " images; raise --request-timeout or send smaller batches");
    }
    Result<imaging::Image> decoded = imaging::DecodeImage(request.images[i], deadline);
    if (!decoded.ok()) return WithIndex(i, decoded.status());
    return decoded;
  };
  std::function<Result<imaging::Image>(size_t, imaging::Image)> process =
      [&](size_t i, imaging::Image input) -> Result<imaging::Image> {
    OomFallbackRun run = RunWithOomFallback(
        **upscaler, device->device, options_.gpu_fallback,
        [&] { return engines_.Resolve(request.engine, request.quality, engine::Device::Cpu()); }, input, deadline,
        progress_);
    if (run.reran_on_cpu) out.device_fell_back = true;
    if (!run.image.ok()) return WithIndex(i, run.image.status());
    return std::move(run.image);
  };
  std::function<Status(size_t, imaging::Image)> encode = [&](size_t i, imaging::Image image) -> Status {
    Result<std::vector<uint8_t>> encoded = imaging::EncodeImage(image, options_.format, deadline);
    if (!encoded.ok()) return WithIndex(i, encoded.status());
    outputs[i] = std::move(encoded).value();
    return Status::Ok();
  };

  auto started = Clock::now();
  Status ran;
  if (pipelined) {
    runtime::PipelineTimings spent;
    ran = runtime::RunThreeStagePipeline<imaging::Image, imaging::Image>(request.images.size(), depth, decode,
                                                                         process, encode, &spent);
    out.timings.decode_ms = spent.first_ms;
    out.timings.process_ms = spent.second_ms;
    out.timings.encode_ms = spent.third_ms;
  } else {
    for (size_t i = 0; i < request.images.size() && ran.ok(); ++i) {
      auto image_start = Clock::now();
      Result<imaging::Image> decoded = decode(i);
      auto decoded_at = Clock::now();
      out.timings.decode_ms += std::chrono::duration<double, std::milli>(decoded_at - image_start).count();
      if (!decoded.ok()) {
        ran = decoded.status();
        break;
      }
      Result<imaging::Image> processed = process(i, std::move(decoded).value());  // the input is freed here
      auto processed_at = Clock::now();
      out.timings.process_ms += std::chrono::duration<double, std::milli>(processed_at - decoded_at).count();
      if (!processed.ok()) {
        ran = processed.status();
        break;
      }
      ran = encode(i, std::move(processed).value());
      auto encoded_at = Clock::now();
      out.timings.encode_ms += std::chrono::duration<double, std::milli>(encoded_at - processed_at).count();
      out.timings.slowest_image_ms = std::max(
          out.timings.slowest_image_ms, std::chrono::duration<double, std::milli>(encoded_at - image_start).count());
    }
  }
  out.timings.pixels_ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  if (!ran.ok()) return fail(ran);
  out.outputs = std::move(outputs);
  out.status = Status::Ok();
  return out;
}

}  // namespace tessera::worker
