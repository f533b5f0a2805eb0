// Server video jobs (issue 19 phase 2, docs/video.md "Server video jobs"): a
// video cut at keyframes into segments, each segment a `video_segment` job that
// any free lane runs, then the segments joined without re-encoding.
//
// How it is stored: the video is a job of kind `video` (the row the client
// follows: status, progress, result file). No lane ever runs it — the scheduler
// leaves kinds it has no executor for alone — so it never waits on a lane while
// its segments need one. Its params_json lists its segments (job id, index,
// range, frames, file), chosen before anything is written, so the parent and its
// segments are linked both ways and a crash between the inserts is repaired on
// the next start. Segments are ordinary jobs: placed, retried after a worker
// failure, requeued after a restart by the scheduler, like any other.
//
// How it is sequenced: the scheduler's listener tells this runner when a
// segment moves; the runner's one thread then reconciles the video — the one
// place that decides the video's status from its segments' (all done: join;
// one failed: the video fails naming it and the others stop; all canceled or
// one canceled: the video is canceled). A finished segment's file is durable
// (written by the child, synced, renamed), so after a crash only unfinished
// segments run again.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "jobs/scheduler.h"
#include "store/job_store.h"
#include "video/video_upscale_pipeline.h"

namespace tessera::jobs {

struct VideoRunnerOptions {
  std::string uploads_dir;   // sources and segment files: <uploads_dir>/video-<job id>/ (shared in a cluster)
  std::string results_dir;   // the joined result
  int lanes = 1;             // this node's lanes (in a cluster, other nodes' lanes are not counted yet)
  int segments_per_lane = 2; // aim: this many segments per lane, when the video has the keyframes
  video::VideoLimits limits;
};

struct VideoRequest {
  std::string job_id;         // chosen by the caller (it named the source's folder)
  std::string source_path;    // the received video, already under <uploads_dir>/video-<job_id>/
  std::string filename;       // result name in results_dir (its extension is the container)
  std::string params_json;    // engine, quality, model; codec, crf, preset, pix_fmt
  std::string webhook_url;
  std::string client;
};

class VideoRunner {
 public:
  VideoRunner(store::JobStore& store, Scheduler& scheduler, VideoRunnerOptions options);
  ~VideoRunner();

  // Resumes the videos a previous process left unfinished (after the scheduler
  // started: it placed their queued segments) and starts the runner's thread.
  Status Start();
  void Stop();

  // Probes the video (limits, codec and container rules, damage found by a
  // demux pass), cuts it, commits the video and its segments and places the
  // segments. Nothing runs when it fails: kBadImage for a video that cannot be
  // read, kLimit over a limit, kInvalid for options or streams the output
  // cannot take.
  Result<store::Job> Submit(const VideoRequest& request);
  // Cancels the video's unfinished segments, then the video. Finished: no change.
  Result<store::Job> Cancel(const std::string& job_id, const std::string& reason = "canceled by request");
  // Scheduler listener: a segment moved.
  void OnJobChanged(const JobView& view);

 private:
  void Loop();
  void Wake(const std::string& video_id);
  // Decides the video's next step from its segments (see the header comment).
  void Reconcile(const std::string& video_id);
  // Inserts the segments the video lists that the store lacks (a crash between
  // the inserts), and places them.
  Status InsertMissingSegments(const store::Job& video, const std::vector<store::Job>& found);
  Status Join(store::Job& video, const std::vector<store::Job>& segments);
  // Writes the video's new status (job_state decides whether it may).
  void Move(store::Job& video, store::JobStatus to, const std::string& error = "");
  void UpdateProgress(const std::string& video_id, int index, double frames_done);

  store::JobStore& store_;
  Scheduler& scheduler_;
  VideoRunnerOptions options_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::string> pending_;  // videos to reconcile, each once
  std::set<std::string> pending_set_;
  bool stopping_ = false;
  std::thread thread_;
  // Per video: each segment's frames done as last reported, and the video's
  // frame count: its progress counts frames across segments.
  std::mutex progress_mutex_;
  std::map<std::string, std::map<int, double>> progress_;
  std::map<std::string, double> frame_totals_;
  std::mutex write_mutex_;  // one read-modify-write of a video row at a time
};

}  // namespace tessera::jobs
