#include "jobs/video_runner.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "jobs/job_state.h"
#include "util/failpoint.h"
#include "util/log.h"
#include "util/uuid.h"
#include "video/container_rules.h"
#include "video/segment_joiner.h"
#include "video/video_probe.h"
#include "video/video_segments.h"

namespace tessera::jobs {

using nlohmann::json;
using store::Job;
using store::JobKind;
using store::JobStatus;

namespace {

// The segments a video's params list, in timeline order.
std::vector<json> ListedSegments(const Job& video) {
  json params = json::parse(video.params_json, nullptr, false);
  if (!params.is_object() || !params.contains("segments") || !params["segments"].is_array()) return {};
  return params["segments"].get<std::vector<json>>();
}

Status CheckLimits(const video::VideoInfo& info, const video::VideoLimits& limits, const std::string& name) {
  if (info.pixels() > limits.max_pixels) {
    return LimitError(name + " is " + std::to_string(info.width) + "x" + std::to_string(info.height) +
                      ", over the server's --max-video-pixels " + std::to_string(limits.max_pixels));
  }
  if (limits.max_frames > 0 && info.frames > limits.max_frames) {
    return LimitError(name + " has " + std::to_string(info.frames) + " frames, over the server's --max-video-frames " +
                      std::to_string(limits.max_frames));
  }
  return Status::Ok();
}

// The segments' container: one that keeps every packet's decoding time and the
// stream's own time base (MP4), so the join copies them as they are; ffv1,
// which MP4 cannot hold, has no frame reordering and goes in Matroska.
const char* SegmentExtension(const std::string& codec) { return codec == "ffv1" ? "mkv" : "mp4"; }

// The queued job of the segment `entry` (one of the video's params' "segments").
Job SegmentJob(const Job& video, const json& entry, const video::VideoLimits& limits) {
  Job job;
  job.id = entry.value("job_id", "");
  job.kind = JobKind::kVideoSegment;
  job.status = JobStatus::kQueued;
  job.input_path = video.input_path;
  job.client = video.client;
  job.created_ms = NowMs();
  // The video's options (model, encoder) less what describes the whole video,
  // plus what the child needs: its range and file, and the server's limits.
  json params = json::parse(video.params_json, nullptr, false);
  for (const char* whole : {"segments", "frames_total", "keyframes", "width", "height"}) params.erase(whole);
  params["video_job_id"] = video.id;
  params["max_video_pixels"] = limits.max_pixels;
  params["max_video_frames"] = limits.max_frames;
  for (const auto& [key, value] : entry.items()) params[key] = value;
  job.params_json = params.dump();
  return job;
}

}  // namespace

VideoRunner::VideoRunner(store::JobStore& store, Scheduler& scheduler, VideoRunnerOptions options)
    : store_(store), scheduler_(scheduler), options_(std::move(options)) {}

VideoRunner::~VideoRunner() { Stop(); }

Result<Job> VideoRunner::Submit(const VideoRequest& request) {
  json params = json::parse(request.params_json, nullptr, false);
  if (!params.is_object()) return InvalidError("video parameters are not a JSON object");
  const std::string output = options_.results_dir + "/" + request.filename;
  auto container = video::ContainerForPath(request.filename);
  if (!container.ok()) return container.status();
  std::string codec = params.value("codec", "libx264");
  if (Status s = video::CheckVideoCodec(*container, codec); !s.ok()) return s;

  auto info = video::ProbeVideo(request.source_path);
  if (!info.ok()) return info.status();
  if (Status s = CheckLimits(*info, options_.limits, "the video"); !s.ok()) return s;
  if (Status s = video::CheckJoinableStreams(request.source_path, output); !s.ok()) return s;
  int wanted = std::max(1, ServiceLanes() * options_.segments_per_lane);
  auto plan = video::PlanSegments(request.source_path, wanted);
  if (!plan.ok()) return plan.status();

  const std::string folder = std::filesystem::path(request.source_path).parent_path().string();
  Job video;
  video.id = request.job_id;
  video.kind = JobKind::kVideo;
  video.status = JobStatus::kQueued;
  video.input_path = request.source_path;
  video.filename = request.filename;
  video.webhook_url = request.webhook_url;
  video.client = request.client;
  video.created_ms = NowMs();

  json listed = json::array();
  for (const video::VideoSegment& segment : plan->segments) {
    char name[32];
    std::snprintf(name, sizeof name, "segment-%03d.%s", segment.index, SegmentExtension(codec));
    listed.push_back({{"job_id", NewUuidV4()},
                      {"index", segment.index},
                      {"range", video::FormatVideoRange(segment.range)},
                      {"frames", segment.frames},
                      {"segment_path", folder + "/" + name}});
  }
  params["frames_total"] = plan->frames;
  params["keyframes"] = plan->keyframes;
  params["width"] = info->width;
  params["height"] = info->height;
  params["segments"] = listed;
  video.params_json = params.dump();
  std::vector<Job> segments;
  for (const json& entry : listed) segments.push_back(SegmentJob(video, entry, options_.limits));

  if (options_.cluster) {
    // In a cluster the video is held by this node from the start (running, its
    // row naming this node): queued, another node's runner could claim it
    // before its segments are written and "repair" them.
    if (Status s = TransitionJob(video, JobStatus::kRunning, NowMs()); !s.ok()) return s;
    video.node = options_.node_id;
  }
  // Until its segments are all written, no reconciling of this video here:
  // lanes of other nodes may already run the first ones.
  {
    std::lock_guard lock(mutex_);
    submitting_.insert(video.id);
  }
  struct Submitted {
    VideoRunner& runner;
    const std::string id;  // a copy: `video` is moved into the answer before this runs
    ~Submitted() {
      std::lock_guard lock(runner.mutex_);
      runner.submitting_.erase(id);
    }
  } submitted{*this, video.id};
  // The video first: a crash before its segments are all written leaves a video
  // that lists them, and the next reconciling (Start, or the node that takes
  // the video over) inserts the missing ones.
  auto seq = store_.Insert(video);
  if (!seq.ok()) return seq.status();
  video.seq = *seq;
  if (options_.cluster) SetOwned(video.id, video.attempts);
  // Tests: the process dies between the video's row and its segments' rows.
  if (FailpointHit("video.crash_before_segments")) std::_Exit(137);
  for (Job& job : segments) {
    auto segment_seq = store_.Insert(job);
    if (!segment_seq.ok()) {
      Move(video, JobStatus::kError, "cannot store its segments: " + segment_seq.status().ToString());
      return segment_seq.status();
    }
    job.seq = *segment_seq;
  }
  scheduler_.Adopt(segments);
  LogInfo("video_job_created").Field("job_id", video.id).Field("frames", plan->frames)
      .Field("keyframes", plan->keyframes).Field("segments", segments.size()).Field("size", std::to_string(info->width) + "x" + std::to_string(info->height));
  scheduler_.Announce(video);
  // Segments that moved while this was writing were not reconciled: now.
  if (options_.cluster) Wake(video.id);
  return video;
}

Status VideoRunner::InsertMissingSegments(const Job& video, const std::vector<Job>& found) {
  std::set<std::string> present;
  for (const Job& job : found) present.insert(job.id);
  std::vector<Job> added;
  for (const json& entry : ListedSegments(video)) {
    if (present.count(entry.value("job_id", ""))) continue;
    Job job = SegmentJob(video, entry, options_.limits);
    auto seq = store_.Insert(job);
    if (!seq.ok()) return seq.status();
    job.seq = *seq;
    added.push_back(std::move(job));
  }
  if (!added.empty()) {
    LogWarn("video_segments_restored").Field("job_id", video.id).Field("segments", added.size());
    scheduler_.Adopt(added);
  }
  return Status::Ok();
}

Status VideoRunner::Write(const Job& job, const Job& as_read) {
  if (!options_.cluster) return store_.Update(job);
  if (as_read.status == JobStatus::kQueued) return options_.cluster->UpdateQueued(job);
  return options_.cluster->UpdateFenced(job, store::Fence{as_read.node, as_read.attempts});
}

bool VideoRunner::Move(Job& video, JobStatus to, const std::string& error) {
  std::lock_guard lock(write_mutex_);
  auto fresh = store_.Get(video.id);
  if (!fresh.ok() || store::IsFinished(fresh->status)) return false;
  Job job = *fresh;
  // A video goes through running before it ends, as every job does, unless it
  // is canceled while none of its segments had started.
  if (job.status == JobStatus::kQueued && to != JobStatus::kCanceled && to != JobStatus::kRunning) {
    if (!TransitionJob(job, JobStatus::kRunning, NowMs()).ok()) return false;
  }
  if (job.status == to) return false;
  if (Status moved = TransitionJob(job, to, NowMs(), error); !moved.ok()) return false;
  if (Status saved = Write(job, *fresh); !saved.ok()) {
    if (saved.code() == StatusCode::kConflict) {
      // Cluster: another node took the video back (this one was presumed dead)
      // or ended it between the read and the write; the row is theirs.
      LogWarn("video_job_taken_over").Field("job_id", job.id).Field("node", options_.node_id);
      SetOwned(job.id, std::nullopt);
    } else {
      LogError("video_job_not_saved").Field("job_id", job.id).Field("error", saved.ToString());
    }
    return false;
  }
  video = job;
  LogInfo("video_job_moved").Field("job_id", job.id).Field("status", store::JobStatusName(job.status))
      .Field("error", job.error);
  scheduler_.Announce(job);
  return true;
}

Status VideoRunner::Join(Job& video, const std::vector<Job>& segments, std::vector<std::string>* files_out) {
  std::vector<std::pair<int, std::string>> files;
  for (const Job& segment : segments) {
    json params = json::parse(segment.params_json, nullptr, false);
    files.emplace_back(params.value("index", 0), params.value("segment_path", ""));
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> paths;
  for (const auto& [index, path] : files) paths.push_back(path);
  video::JoinReport report;
  Status joined = video::JoinSegments(video.input_path, paths, options_.results_dir + "/" + video.filename, &report);
  if (!joined.ok()) return joined;
  LogInfo("video_joined").Field("job_id", video.id).Field("segments", paths.size())
      .Field("video_packets", report.video_packets).Field("other_packets", report.other_packets);
  *files_out = std::move(paths);
  return Status::Ok();
}

void VideoRunner::Reconcile(const std::string& video_id) {
  {
    std::lock_guard lock(mutex_);
    if (submitting_.count(video_id)) return;  // Submit wakes it once its segments are written
  }
  auto video = store_.Get(video_id);
  if (!video.ok() || video->kind != JobKind::kVideo) return;
  if (options_.cluster) {
    // Only the node the row names sequences a video; a queued one waits for a
    // claim (this node's runner tries at once).
    if (video->status == JobStatus::kQueued) return ClaimSoon();
    if (video->node != options_.node_id) return SetOwned(video_id, std::nullopt);
    SetOwned(video_id, store::IsFinished(video->status) ? std::nullopt : std::optional<int>(video->attempts));
  }
  std::vector<json> listed = ListedSegments(*video);
  store::JobFilter filter;
  for (const json& entry : listed) filter.ids.push_back(entry.value("job_id", ""));
  auto segments = store_.List(filter);
  if (!segments.ok()) {
    LogError("video_reconcile_failed").Field("job_id", video_id).Field("error", segments.status().ToString());
    return;
  }
  std::vector<std::string> live;
  for (const Job& segment : *segments) {
    if (!store::IsFinished(segment.status)) live.push_back(segment.id);
  }
  if (store::IsFinished(video->status)) {
    // Canceled or failed while segments still ran: they stop too.
    if (!live.empty() && video->status != JobStatus::kSuccess) scheduler_.CancelMany(live, "its video job ended");
    return;
  }
  if (segments->size() < listed.size()) {
    if (Status s = InsertMissingSegments(*video, *segments); !s.ok()) {
      LogError("video_reconcile_failed").Field("job_id", video_id).Field("error", s.ToString());
      return;
    }
    return Reconcile(video_id);
  }
  const Job* failed = nullptr;
  const Job* canceled = nullptr;
  size_t succeeded = 0;
  bool started = false;
  for (const Job& segment : *segments) {
    if (segment.status == JobStatus::kError && failed == nullptr) failed = &segment;
    if (segment.status == JobStatus::kCanceled && canceled == nullptr) canceled = &segment;
    if (segment.status == JobStatus::kSuccess) succeeded += 1;
    if (segment.status != JobStatus::kQueued) started = true;
  }
  auto index_of = [](const Job& segment) {
    return std::to_string(json::parse(segment.params_json, nullptr, false).value("index", -1));
  };
  if (failed != nullptr || canceled != nullptr) {
    if (!live.empty()) scheduler_.CancelMany(live, "another segment of its video ended");
    if (failed != nullptr) {
      Move(*video, JobStatus::kError, "segment " + index_of(*failed) + " failed: " + failed->error);
    } else {
      Move(*video, JobStatus::kCanceled, "segment " + index_of(*canceled) + " was canceled");
    }
    return;
  }
  if (succeeded == listed.size()) {
    Move(*video, JobStatus::kRunning);
    std::vector<std::string> files;
    if (Status joined = Join(*video, *segments, &files); !joined.ok()) {
      Move(*video, JobStatus::kError, "joining the segments: " + joined.ToString());
      return;
    }
    // The segment files go once the success is written: a crash before that
    // joins them again (into the same result), and a node that lost the video
    // meanwhile leaves them to the one that holds it.
    if (Move(*video, JobStatus::kSuccess)) {
      std::error_code ignored;
      for (const std::string& path : files) std::filesystem::remove(path, ignored);
    }
    SetOwned(video_id, std::nullopt);  // and its progress, kept per video
    return;
  }
  if (started) Move(*video, JobStatus::kRunning);
}

void VideoRunner::UpdateProgress(const std::string& video_id, int index, double frames_done) {
  bool known = false;
  {
    std::lock_guard lock(progress_mutex_);
    known = frame_totals_.count(video_id) > 0;
  }
  if (!known) {
    // First report for this video in this process: its frame count, and the
    // segments finished before (a previous life of the server) count as done.
    auto video = store_.Get(video_id);
    if (!video.ok()) return;
    json params = json::parse(video->params_json, nullptr, false);
    std::map<std::string, json> listed;
    store::JobFilter filter;
    for (const json& entry : ListedSegments(*video)) {
      listed[entry.value("job_id", "")] = entry;
      filter.ids.push_back(entry.value("job_id", ""));
    }
    filter.statuses = {JobStatus::kSuccess};
    auto finished = store_.List(filter);
    std::lock_guard lock(progress_mutex_);
    frame_totals_[video_id] = params.is_object() ? params.value("frames_total", 0.0) : 0.0;
    if (finished.ok()) {
      for (const Job& segment : *finished) {
        const json& entry = listed[segment.id];
        progress_[video_id][entry.value("index", 0)] = entry.value("frames", 0.0);
      }
    }
  }
  double total = 0;
  double done = 0;
  {
    std::lock_guard lock(progress_mutex_);
    auto& segments = progress_[video_id];
    segments[index] = frames_done;
    for (const auto& [i, frames] : segments) done += frames;
    auto totals = frame_totals_.find(video_id);
    if (totals == frame_totals_.end()) return;
    total = totals->second;
  }
  if (total <= 0) return;
  const double fraction = std::min(1.0, done / total);
  if (options_.cluster) {
    std::optional<int> attempt = OwnedAttempt(video_id);
    if (!attempt) return;
    Status s = options_.cluster->UpdateProgressFenced(video_id, store::Fence{options_.node_id, *attempt}, fraction);
    if (!s.ok() && s.code() != StatusCode::kConflict) {
      LogWarn("video_progress_not_saved").Field("job_id", video_id).Field("error", s.ToString());
    }
    return;
  }
  if (Status s = store_.UpdateProgress(video_id, fraction); !s.ok()) {
    LogWarn("video_progress_not_saved").Field("job_id", video_id).Field("error", s.ToString());
  }
}

void VideoRunner::OnJobChanged(const JobView& view) {
  const Job& job = view.job;
  if (job.kind == JobKind::kVideo && options_.cluster) {
    // Queued: submitted, or taken back from a node that died; ended elsewhere
    // (canceled on another node): its segments stop.
    if (job.status == JobStatus::kQueued) ClaimSoon();
    if (store::IsFinished(job.status) && OwnedAttempt(job.id)) Wake(job.id);
    return;
  }
  if (job.kind != JobKind::kVideoSegment) return;
  json params = json::parse(job.params_json, nullptr, false);
  if (!params.is_object()) return;
  std::string video_id = params.value("video_job_id", "");
  if (video_id.empty()) return;
  // In a cluster every node hears every segment: the one sequencing its video acts.
  if (options_.cluster && !OwnedAttempt(video_id)) return;
  if (job.status == JobStatus::kRunning || job.status == JobStatus::kSuccess) {
    double frames = static_cast<double>(params.value("frames", int64_t{0}));
    UpdateProgress(video_id, params.value("index", 0), job.status == JobStatus::kSuccess ? frames : frames * job.progress);
  }
  // A segment that started or ended may change the video; progress alone does not.
  if (job.status != JobStatus::kRunning || job.progress == 0.0) Wake(video_id);
}

void VideoRunner::Wake(const std::string& video_id) {
  {
    std::lock_guard lock(mutex_);
    if (!pending_set_.insert(video_id).second) return;
    pending_.push_back(video_id);
  }
  wake_.notify_all();
}

int VideoRunner::ServiceLanes() {
  if (options_.cluster) {
    // Read now rather than the scheduler's copy (renewed with the lease): a
    // node that just joined counts.
    auto nodes = options_.cluster->ListNodes();
    const int lanes = nodes.ok() ? store::AliveLanes(*nodes) : 0;
    if (lanes > 0) return lanes;
  }
  return scheduler_.ServiceLaneCount();
}

void VideoRunner::ClaimSoon() {
  {
    std::lock_guard lock(mutex_);
    claim_now_ = true;
  }
  wake_.notify_all();
}

std::optional<int> VideoRunner::OwnedAttempt(const std::string& video_id) {
  std::lock_guard lock(owned_mutex_);
  auto it = owned_.find(video_id);
  if (it == owned_.end()) return std::nullopt;
  return it->second;
}

void VideoRunner::SetOwned(const std::string& video_id, std::optional<int> attempt) {
  {
    std::lock_guard lock(owned_mutex_);
    if (attempt) {
      owned_[video_id] = *attempt;
      return;
    }
    owned_.erase(video_id);
  }
  std::lock_guard lock(progress_mutex_);
  progress_.erase(video_id);
  frame_totals_.erase(video_id);
}

void VideoRunner::ClaimQueuedVideos() {
  store::ClaimRequest request;
  request.node_id = options_.node_id;
  request.kinds = {JobKind::kVideo};
  while (true) {
    auto claimed = options_.cluster->Claim(request, [&](Job& job) {
      job.node = options_.node_id;
      return TransitionJob(job, JobStatus::kRunning, NowMs());
    });
    if (!claimed.ok()) {
      // The database is away: the next poll tries again.
      LogWarn("video_claim_failed").Field("node", options_.node_id).Field("error", claimed.status().ToString());
      return;
    }
    if (!*claimed) return;
    const Job& video = **claimed;
    SetOwned(video.id, video.attempts);
    LogInfo("video_job_claimed").Field("job_id", video.id).Field("node", options_.node_id)
        .Field("attempt", video.attempts);
    Wake(video.id);
  }
}

Status VideoRunner::Start() {
  // On one server the runner resumes every unfinished video. In a cluster the
  // videos this node held before a restart were requeued by its scheduler's
  // start (store::IsCoordinator), and the runner claims queued ones at once.
  std::vector<Job> unfinished;
  if (!options_.cluster) {
    store::JobFilter filter;
    filter.kind = JobKind::kVideo;
    filter.statuses = {JobStatus::kQueued, JobStatus::kRunning};
    auto listed = store_.List(filter);
    if (!listed.ok()) return listed.status();
    unfinished = std::move(listed).value();
  }
  {
    std::lock_guard lock(mutex_);
    stopping_ = false;
    claim_now_ = options_.cluster != nullptr;
    thread_ = std::thread([this] { Loop(); });
  }
  for (const Job& video : unfinished) {
    LogInfo("video_job_resumed").Field("job_id", video.id);
    Wake(video.id);
  }
  return Status::Ok();
}

void VideoRunner::Stop() {
  {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void VideoRunner::Loop() {
  std::unique_lock lock(mutex_);
  while (true) {
    auto ready = [this] { return stopping_ || !pending_.empty() || claim_now_; };
    if (!options_.cluster) {
      wake_.wait(lock, ready);
    } else if (!wake_.wait_for(lock, options_.claim_poll, ready)) {
      claim_now_ = true;  // the poll: an event saying a video was queued may have been missed
    }
    if (stopping_) return;
    if (claim_now_) {
      claim_now_ = false;
      lock.unlock();
      ClaimQueuedVideos();
      lock.lock();
      continue;
    }
    std::string video_id = pending_.front();
    pending_.pop_front();
    pending_set_.erase(video_id);
    lock.unlock();
    Reconcile(video_id);
    lock.lock();
  }
}

Result<Job> VideoRunner::Cancel(const std::string& job_id, const std::string& reason) {
  auto video = store_.Get(job_id);
  if (!video.ok()) return video.status();
  if (video->kind != JobKind::kVideo) return InvalidError("job " + job_id + " is not a video job");
  if (store::IsFinished(video->status)) return video;
  // The video first, so that segments stopping now do not name themselves as the cause.
  Move(*video, JobStatus::kCanceled, reason);
  std::vector<std::string> ids;
  for (const json& entry : ListedSegments(*video)) ids.push_back(entry.value("job_id", ""));
  if (auto stopped = scheduler_.CancelMany(ids, reason); !stopped.ok()) return stopped.status();
  return store_.Get(job_id);
}

}  // namespace tessera::jobs
