#include "jobs/upscale_executor.h"

#include <signal.h>

#include <nlohmann/json.hpp>

#include "jobs/watchdog.h"
#include "protocol/wire_format.h"
#include "util/failpoint.h"
#include "util/file_io.h"
#include "util/log.h"

namespace tessera::jobs {
UpscaleExecutor::UpscaleExecutor(UpscaleExecutorOptions options, LaneSpec lane)
    : options_(std::move(options)), lane_(std::move(lane)) {}

UpscaleExecutor::~UpscaleExecutor() = default;  // each WorkerProcess kills and reaps its child

int UpscaleExecutor::worker_pid(const std::string& format) const {
  auto it = workers_.find(format);
  return it == workers_.end() ? -1 : it->second->process().pid();
}

Result<worker::WorkerProcess*> UpscaleExecutor::WorkerFor(const std::string& format) {
  if (auto it = workers_.find(format); it != workers_.end()) return it->second.get();
  std::vector<std::string> args = {"--keep-alive", "--format", format};
  args.insert(args.end(), options_.worker_args.begin(), options_.worker_args.end());
  std::string lane_name = lane_.name;
  for (char& c : lane_name) {
    if (c == ':') c = '-';
  }
  std::string log_path = options_.logs_dir.empty() ? "" : options_.logs_dir + "/worker-" + lane_name + ".log";
  auto started = worker::WorkerProcess::Start(options_.worker_binary, args, log_path);
  if (!started.ok()) return started.status();
  LogInfo("upscale_worker_started").Field("lane", lane_.name).Field("format", format)
      .Field("pid", static_cast<int64_t>(started->process().pid()));
  auto owned = std::make_unique<worker::WorkerProcess>(std::move(started).value());
  worker::WorkerProcess* raw = owned.get();
  workers_[format] = std::move(owned);
  return raw;
}

ExecutionOutcome UpscaleExecutor::Execute(const store::Job& job, ExecutionContext& context) {
  using Kind = ExecutionOutcome::Kind;
  nlohmann::json params = nlohmann::json::parse(job.params_json, nullptr, false);
  if (!params.is_object()) return {Kind::kError, "job parameters are not a JSON object"};
  std::string engine_name = params.value("engine", "realesrgan");
  std::string quality = params.value("quality", "");
  std::string format = params.value("format", "png");
  auto engine = protocol::EngineFromName(engine_name);
  if (!engine) return {Kind::kError, "unknown engine " + engine_name};

  auto input = ReadFileBytes(job.input_path, options_.max_input_bytes);
  if (!input.ok()) return {Kind::kError, "input image: " + input.status().message()};

  auto worker = WorkerFor(format);
  if (!worker.ok()) return {Kind::kRetry, "cannot start the worker: " + worker.status().message()};

  protocol::RequestFrameSpec spec;
  spec.request_id = next_request_id_++;
  spec.engine = static_cast<uint32_t>(*engine);
  spec.quality = quality;
  spec.gpu_id = lane_.gpu_id;
  spec.images = {std::span<const uint8_t>(*input)};
  std::vector<uint8_t> frame = protocol::EncodeRequestFrame(spec);

  worker::WorkerProcess* child = *worker;
  // Tests: the worker dies just as the image is sent (src/util/failpoint.h).
  if (FailpointHit("upscale.kill_worker")) child->process().Signal(SIGKILL);
  context.cancel.OnCancel([child] { child->process().Signal(SIGKILL); });
  Result<protocol::Response> response = IoError("not sent");
  bool hung = false;
  {
    Watchdog watchdog(options_.job_timeout, [child] { child->process().Signal(SIGKILL); });
    response = child->Call(frame);
    watchdog.Disarm();
    hung = watchdog.fired();
  }
  context.cancel.ClearAction();

  if (!response.ok() || response->request_id != spec.request_id) {
    // The child is gone or out of step: replace it; the job runs again.
    std::string why = hung ? "the worker did not answer within " + std::to_string(options_.job_timeout.count()) + " ms"
                           : "the worker failed: " + (response.ok() ? std::string("answered another request")
                                                                    : response.status().message());
    workers_.erase(format);
    LogWarn("upscale_worker_lost").Field("lane", lane_.name).Field("job_id", job.id).Field("reason", why);
    if (context.cancel.requested()) return {Kind::kCanceled, "canceled by request"};
    return {Kind::kRetry, why};
  }
  if (response->status != static_cast<uint32_t>(protocol::WireStatus::kOk)) {
    auto status = static_cast<protocol::WireStatus>(response->status);
    return {Kind::kError, std::string(protocol::WireStatusName(status)) + ": " + response->error};
  }
  if (response->outputs.size() != 1) return {Kind::kError, "the worker returned no image"};

  // Batch images go to their batch's folder (params "output_dir"), the rest to the results.
  std::string output_dir = params.value("output_dir", options_.results_dir);
  Status written = WriteFileAtomically(output_dir + "/" + job.filename, response->outputs[0]);
  if (!written.ok()) return {Kind::kError, written.message()};
  return {Kind::kSuccess, ""};  // the success transition records progress 1
}

}  // namespace tessera::jobs
