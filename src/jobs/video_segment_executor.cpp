#include "jobs/video_segment_executor.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "jobs/command_progress.h"
#include "jobs/command_runner.h"
#include "jobs/progress_parser.h"
#include "util/log.h"

namespace tessera::jobs {
namespace {

// The child's command line. Literal words only: nothing in it is a placeholder
// (RunningCommand's templates substitute `{name}`, which no value here holds,
// since paths and model names are the server's own).
Result<std::vector<std::string>> SegmentCommand(const VideoSegmentExecutorOptions& options, const store::Job& job,
                                                const nlohmann::json& params, int gpu_id) {
  std::string engine = params.value("engine", "");
  std::string quality = params.value("quality", "");
  std::string segment = params.value("segment_path", "");
  if (engine.empty() || quality.empty() || segment.empty()) {
    return InvalidError("segment parameters lack engine, quality or segment_path");
  }
  std::vector<std::string> argv = {options.tessera_binary, "upscale", "-i", job.input_path, "-o", segment};
  if (engine == "lanczos") {
    argv.insert(argv.end(), {"-n", "lanczos", "-s", quality});
  } else {
    argv.insert(argv.end(), {"-n", quality});
  }
  argv.insert(argv.end(), {"-g", std::to_string(gpu_id)});
  argv.insert(argv.end(), options.model_args.begin(), options.model_args.end());
  argv.insert(argv.end(), {"--video-only", "--range", params.value("range", ":"), "--progress-total",
                           std::to_string(params.value("frames", int64_t{1}))});
  argv.insert(argv.end(), {"--codec", params.value("codec", "libx264")});
  if (params.value("crf", -1) >= 0) argv.insert(argv.end(), {"--crf", std::to_string(params.value("crf", -1))});
  if (!params.value("preset", "").empty()) argv.insert(argv.end(), {"--preset", params.value("preset", "")});
  if (!params.value("pix_fmt", "").empty()) argv.insert(argv.end(), {"--pix-fmt", params.value("pix_fmt", "")});
  argv.insert(argv.end(), {"--max-video-pixels", std::to_string(params.value("max_video_pixels", uint64_t{0})),
                           "--max-video-frames", std::to_string(params.value("max_video_frames", int64_t{0}))});
  return argv;
}

// The child's own reason from its last `video_failed` log line (kv format:
// error="..."), e.g. "cannot decode at frame 6 ...", rather than libav's noise
// before it; the output's tail when there is no such line.
std::string ChildError(const std::string& output) {
  size_t event = output.rfind("event=video_failed");
  size_t start = event == std::string::npos ? std::string::npos : output.find(" error=\"", event);
  if (start != std::string::npos) {
    start += 8;
    size_t end = output.find('\n', start);
    std::string text = output.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!text.empty() && text.back() == '"') text.pop_back();
    return text;
  }
  return output.size() > 600 ? output.substr(output.size() - 600) : output;
}

}  // namespace

ExecutionOutcome VideoSegmentExecutor::Execute(const store::Job& job, ExecutionContext& context) {
  using Kind = ExecutionOutcome::Kind;
  nlohmann::json params = nlohmann::json::parse(job.params_json, nullptr, false);
  if (!params.is_object()) return {Kind::kError, "job parameters are not a JSON object"};
  std::string segment = params.value("segment_path", "");
  int index = params.value("index", -1);
  std::string video_job = params.value("video_job_id", "");
  std::error_code ec;
  if (!segment.empty() && std::filesystem::exists(segment, ec)) {
    LogInfo("video_segment_found").Field("job_id", job.id).Field("video_job_id", video_job).Field("segment", index)
        .Field("path", segment);
    return {Kind::kSuccess, ""};
  }
  auto argv = SegmentCommand(options_, job, params, context.lane.gpu_id);
  if (!argv.ok()) return {Kind::kError, argv.status().message()};
  std::filesystem::create_directories(std::filesystem::path(segment).parent_path(), ec);

  CommandSpec spec;
  spec.argv_template = *argv;
  spec.log_path = options_.logs_dir + "/" + job.id + ".log";
  auto started = RunningCommand::Start(spec, ReportCommandProgress(context.report_progress));
  if (!started.ok()) return {Kind::kError, "cannot start tessera upscale: " + started.status().message()};
  RunningCommand* command = started->get();
  // One line per run of a segment: what a resumed job is checked against (no
  // finished segment runs twice).
  LogInfo("video_segment_started").Field("job_id", job.id).Field("video_job_id", video_job).Field("segment", index)
      .Field("range", params.value("range", "")).Field("lane", context.lane.name)
      .Field("pid", static_cast<int64_t>(command->pid()));

  CommandWait waited = WaitForCommand(*command, context.cancel, options_.timeout, options_.cancel_grace);
  const CommandOutcome& outcome = waited.outcome;

  if (waited.canceled) return {Kind::kCanceled, "canceled by request"};
  if (waited.timed_out) {
    return {Kind::kError, "segment " + std::to_string(index) + " ran past its timeout of " +
                              std::to_string(options_.timeout.count() / 1000) + " s and was stopped"};
  }
  if (outcome.term_signal != 0) {
    // Killed (the OOM killer, an operator's kill -9) or crashed: the machinery
    // failed, not the video. The scheduler runs the segment again, up to
    // --max-attempts; the segments already done stay done.
    return {Kind::kRetry, "segment " + std::to_string(index) + " (range " + params.value("range", "") + "): " +
                              outcome.Describe()};
  }
  if (!outcome.succeeded()) {
    return {Kind::kError, "segment " + std::to_string(index) + " (range " + params.value("range", "") +
                              ") failed (" + outcome.Describe() + "): " + ChildError(outcome.output_tail)};
  }
  if (!std::filesystem::exists(segment, ec)) {
    return {Kind::kError, "segment " + std::to_string(index) + ": tessera upscale exited successfully but wrote no " +
                              segment};
  }
  LogInfo("video_segment_done").Field("job_id", job.id).Field("video_job_id", video_job).Field("segment", index)
      .Field("lane", context.lane.name);
  return {Kind::kSuccess, ""};
}

}  // namespace tessera::jobs
