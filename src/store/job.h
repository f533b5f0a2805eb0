// A job as the store keeps it: one row, whatever its kind.
//
// The store only persists and queries these records. Which status may follow which
// is decided in one place, src/jobs/job_state.h; nothing else assigns `status`
// except through it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tessera::store {

// kVideo is a whole video (POST /upscale/video): no lane runs it; it is the sum
// of its kVideoSegment jobs, sequenced by jobs/video_runner.h (docs/video.md).
enum class JobKind { kGenerate, kUpscale, kVideo, kVideoSegment };
enum class JobStatus { kQueued, kRunning, kSuccess, kError, kCanceled };

// The wire and database spellings ("generate", "queued", ...), as in the API.
std::string_view JobKindName(JobKind kind);
std::string_view JobStatusName(JobStatus status);
std::optional<JobKind> ParseJobKind(std::string_view text);
std::optional<JobStatus> ParseJobStatus(std::string_view text);
// success, error and canceled: the job will not change again.
bool IsFinished(JobStatus status);
// A job that no lane runs: it sequences other jobs (a video and its segments,
// jobs/video_runner.h). In a cluster a node claims it to sequence it; taken back
// from a node that died or restarted it is always requeued, whatever the restart
// policy: its work is in the jobs it sequences, which follow that policy.
inline bool IsCoordinator(JobKind kind) { return kind == JobKind::kVideo; }

struct Job {
  std::string id;  // random UUID v4, lower-case
  JobKind kind = JobKind::kGenerate;
  JobStatus status = JobStatus::kQueued;

  // Submission order: assigned by the store on Insert, strictly increasing.
  // The FIFO is by this number, never by clocks.
  int64_t seq = 0;

  // What was asked. `params_json` holds the kind's own options as a JSON object
  // (generate: {"size":"1280x720","resize_mode":"pad"}; upscale: model, scale,
  // format...), so adding an option needs no migration.
  std::string prompt;       // generate: the prompt; upscale: empty
  std::string params_json = "{}";
  std::string input_path;   // upscale: the stored input image; generate: empty
  std::string filename;     // result file name inside the results directory
  std::string webhook_url;  // empty: none
  std::string client;       // who submitted (token name or address), for logs and quotas
  std::string batch_id;     // the image batch it belongs to; empty: none

  // Where and how it runs.
  std::string lane;  // "cuda:0", "cpu:0"...; empty until placed
  int gpu_id = -1;   // -1: CPU lane or not placed
  // The node (a server of a cluster, docs/cluster.md) that runs or last ran it;
  // empty on a single server. With `attempts`, the fence of a claimed job.
  std::string node;
  int attempts = 0;  // times it was started (a retry after a worker crash adds one)
  double progress = 0.0;  // 0..1
  std::string error;      // empty unless status is error (or canceled with a reason)

  // Unix epoch milliseconds; 0 = not yet.
  int64_t created_ms = 0;
  int64_t started_ms = 0;
  int64_t finished_ms = 0;
};

}  // namespace tessera::store
