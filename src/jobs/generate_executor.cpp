#include "jobs/generate_executor.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "jobs/command_progress.h"
#include "jobs/command_runner.h"
#include "jobs/progress_parser.h"
#include "util/log.h"

namespace tessera::jobs {

std::string CudaVisibleDevicesFor(const LaneSpec& lane) {
  constexpr std::string_view kCuda = "cuda:";
  if (lane.gpu_id < 0 || lane.name.rfind(kCuda, 0) != 0) return "";
  return lane.name.substr(kCuda.size());
}

ExecutionOutcome GenerateExecutor::Execute(const store::Job& job, ExecutionContext& context) {
  using Kind = ExecutionOutcome::Kind;
  nlohmann::json params = nlohmann::json::parse(job.params_json, nullptr, false);
  if (!params.is_object()) return {Kind::kError, "job parameters are not a JSON object"};
  auto api_size = ParseApiSize(params.value("size", ""));
  if (!api_size.ok()) return {Kind::kError, api_size.status().message()};
  auto mode = ParseResizeMode(params.value("resize_mode", "pad"));
  if (!mode.ok()) return {Kind::kError, mode.status().message()};
  VideoSize model_size = GeneratorSize(*api_size);

  std::error_code ignored;
  std::string partial_dir = options_.results_dir + "/.partial";
  std::filesystem::create_directories(partial_dir, ignored);
  std::string raw_path = partial_dir + "/" + job.id + ".mp4";
  ::unlink(raw_path.c_str());  // a previous attempt's leftovers

  CommandSpec spec;
  spec.argv_template = options_.argv_template;
  spec.values = {{"prompt", job.prompt},
                 {"width", std::to_string(model_size.width)},
                 {"height", std::to_string(model_size.height)},
                 {"size", std::to_string(model_size.width) + "*" + std::to_string(model_size.height)},
                 {"output", raw_path},
                 {"ckpt_dir", options_.ckpt_dir},
                 {"gpu_id", std::to_string(context.lane.gpu_id)},
                 {"job_id", job.id}};
  // Seed 001: one GPU per job, chosen by the lane. On a CPU lane the generator
  // sees no GPU at all rather than whatever the server happens to see.
  spec.env["CUDA_VISIBLE_DEVICES"] = CudaVisibleDevicesFor(context.lane);
  spec.working_directory = options_.working_directory;
  spec.log_path = options_.logs_dir + "/" + job.id + ".log";

  auto started = RunningCommand::Start(spec, ReportCommandProgress(context.report_progress));
  if (!started.ok()) return {Kind::kError, "cannot start the generator: " + started.status().message()};
  RunningCommand* command = started->get();
  LogInfo("generator_started").Field("job_id", job.id).Field("pid", static_cast<int64_t>(command->pid()))
      .Field("lane", context.lane.name).Field("log", spec.log_path);

  CommandWait waited = WaitForCommand(*command, context.cancel, options_.timeout, options_.cancel_grace);
  const CommandOutcome& outcome = waited.outcome;

  if (waited.canceled) {
    ::unlink(raw_path.c_str());
    return {Kind::kCanceled, "canceled by request"};
  }
  if (waited.timed_out) {
    ::unlink(raw_path.c_str());
    return {Kind::kError, "the generator ran past its timeout of " +
                              std::to_string(options_.timeout.count() / 1000) + " s and was stopped"};
  }
  if (!outcome.succeeded()) {
    ::unlink(raw_path.c_str());
    std::string tail = outcome.output_tail;
    if (tail.size() > 600) tail = tail.substr(tail.size() - 600);
    return {Kind::kError, "the generator failed (" + outcome.Describe() + "): " + tail};
  }
  struct stat info {};
  if (::stat(raw_path.c_str(), &info) != 0 || info.st_size == 0) {
    return {Kind::kError, "the generator exited successfully but wrote no video at " + raw_path};
  }

  Status converted = PostprocessVideo(raw_path, options_.results_dir + "/" + job.filename, *api_size, *mode,
                                      options_.video_tools);
  ::unlink(raw_path.c_str());
  if (!converted.ok()) return {Kind::kError, "post-processing to " + api_size->ToString() + ": " + converted.message()};
  return {Kind::kSuccess, ""};
}

}  // namespace tessera::jobs
