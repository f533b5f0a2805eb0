// Runs `video_segment` jobs: one keyframe range of a video upscaled into a file
// of its own by a `tessera upscale --range` child (docs/video.md, "Server video
// jobs"), on whichever lane took the job.
//
// The child runs in its own process group (RunningCommand): a cancel kills the
// group, a job timeout too. Its TESSERA_PROGRESS lines (--progress-total, the
// segment's frame count) are the job's progress. Its output is appended to
// <logs_dir>/<job_id>.log. The child writes "<segment>.partial" and renames it
// only when complete and synced, so a segment file that exists is whole: a run
// that finds it (the previous process died after the file was made but before
// the job was marked done) does not encode it again.
//
// Job params (params_json), set by jobs/video_runner.h: {"video_job_id", "index",
// "range": "START:END", "frames", "segment_path", "engine", "quality", "codec",
// "crf", "preset", "pix_fmt", "max_video_pixels", "max_video_frames"}; the source
// video is the job's input_path.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "jobs/job_executor.h"

namespace tessera::jobs {

struct VideoSegmentExecutorOptions {
  std::string tessera_binary;            // the tessera executable
  std::vector<std::string> model_args;   // --model-dir, --threads: as the upscale workers get them
  std::string logs_dir;
  std::chrono::milliseconds timeout{0};  // 0: none
  std::chrono::milliseconds cancel_grace{std::chrono::seconds(5)};
};

class VideoSegmentExecutor : public JobExecutor {
 public:
  explicit VideoSegmentExecutor(VideoSegmentExecutorOptions options) : options_(std::move(options)) {}
  ExecutionOutcome Execute(const store::Job& job, ExecutionContext& context) override;

 private:
  VideoSegmentExecutorOptions options_;
};

}  // namespace tessera::jobs
