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
//
// In a cluster (docs/cluster.md) segments are claimed by every node's lanes,
// and one node sequences each video: the runner of any node claims a queued
// video row (the store's claim, as a lane claims a job; the row then names that
// node), hears its segments move on the cluster's feed (OnJobChanged gets every
// node's changes), and writes the video only under its claim (fenced). A node
// that dies or restarts has its videos requeued (store::IsCoordinator), and
// whichever runner claims one next resumes it from its segments' rows.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "jobs/scheduler.h"
#include "store/cluster_store.h"
#include "store/job_store.h"
#include "video/video_upscale_pipeline.h"

namespace tessera::jobs {

struct VideoRunnerOptions {
  std::string uploads_dir;   // sources and segment files: <uploads_dir>/video-<job id>/ (shared in a cluster)
  std::string results_dir;   // the joined result
  int segments_per_lane = 2; // aim: this many segments per lane of the service, when the video has the keyframes
  video::VideoLimits limits;
  // Cluster mode: the shared store's claims and fenced writes, and this node's
  // id; null on a single server.
  store::ClusterStore* cluster = nullptr;
  std::string node_id;
  // Cluster mode: how often the runner looks for a queued video when no
  // event said one was queued (a missed one).
  std::chrono::milliseconds claim_poll{2000};
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
  // A segment (or, in a cluster, a video) moved: from the scheduler's listener
  // on a single server, from the cluster's feed (every node's changes) in a
  // cluster.
  void OnJobChanged(const JobView& view);

 private:
  void Loop();
  void Wake(const std::string& video_id);
  // Decides the video's next step from its segments (see the header comment).
  void Reconcile(const std::string& video_id);
  // Inserts the segments the video lists that the store lacks (a crash between
  // the inserts), and places them.
  Status InsertMissingSegments(const store::Job& video, const std::vector<store::Job>& found);
  // Joins the segments into the result; `files` gets the segment files, which
  // the caller removes once the video's success is written.
  Status Join(store::Job& video, const std::vector<store::Job>& segments, std::vector<std::string>* files);
  // Writes the video's new status (job_state decides whether it may). False
  // when nothing was written (finished already, or in a cluster no longer the
  // row that was read: another node holds or ended it).
  bool Move(store::Job& video, store::JobStatus to, const std::string& error = "");
  // Update of the video row `as_read` changed into `job`: in a cluster fenced by
  // the row as read (its node and attempt, or still queued).
  Status Write(const store::Job& job, const store::Job& as_read);
  void UpdateProgress(const std::string& video_id, int index, double frames_done);
  // Cluster mode: claims queued videos until none is left; each claimed one is
  // reconciled.
  void ClaimQueuedVideos();
  void ClaimSoon();
  // The lanes of the service (every alive node's in a cluster): what a video is cut for.
  int ServiceLanes();
  // Cluster mode: the attempt under which this node holds the video, if it does.
  std::optional<int> OwnedAttempt(const std::string& video_id);
  // Records the claim (cluster mode); nullopt: the video is no longer held or
  // is finished, and its progress counters go too (on a single server as well).
  void SetOwned(const std::string& video_id, std::optional<int> attempt);

  store::JobStore& store_;
  Scheduler& scheduler_;
  VideoRunnerOptions options_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::string> pending_;  // videos to reconcile, each once
  std::set<std::string> pending_set_;
  bool stopping_ = false;
  bool claim_now_ = false;  // cluster mode: look for queued videos
  std::set<std::string> submitting_;  // videos whose segments Submit is still writing
  std::thread thread_;
  std::mutex owned_mutex_;
  std::map<std::string, int> owned_;  // cluster mode: videos this node sequences -> claim attempt
  // Per video: each segment's frames done as last reported, and the video's
  // frame count: its progress counts frames across segments.
  std::mutex progress_mutex_;
  std::map<std::string, std::map<int, double>> progress_;
  std::map<std::string, double> frame_totals_;
  std::mutex write_mutex_;  // one read-modify-write of a video row at a time
};

}  // namespace tessera::jobs
