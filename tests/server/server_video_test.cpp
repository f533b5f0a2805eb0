// Video jobs through a real server (issue 19 phase 2): POST /upscale/video cuts
// a clip at keyframes into segment jobs that run on both CPU lanes at once,
// joins them by stream copy, and resumes after kill -9 without running a
// finished segment again. Clips are made by the ffmpeg program; outputs are read
// back with ffprobe/ffmpeg, never with src/video.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "../support/run_program.h"
#include "../support/server_process.h"
#include "server_video_clips.h"

namespace tessera::test {
namespace {

using nlohmann::json;

constexpr const char* kModel = "realesr-animevideov3-x2";

// A server on CPU lanes whatever the machine has: the test asserts lane names
// and parallel segments on two CPU lanes.
ServerOptions CpuServer(const std::string& data_dir, std::vector<std::string> args) {
  return ServerOptions{data_dir, std::move(args), {{"GPU_IDS", ""}, {"NVIDIA_VISIBLE_DEVICES", "none"}}};
}

std::string Submit(const ServerProcess& server, const std::string& clip) {
  auto client = server.Client();
  auto answer = client->Post(std::string("/upscale/video?model=") + kModel, ReadWholeFile(clip),
                             "application/octet-stream");
  EXPECT_TRUE(answer) << "no answer";
  if (!answer) return "";
  EXPECT_EQ(answer->status, 202) << answer->body;
  json job = json::parse(answer->body);
  EXPECT_EQ(job["kind"], "video");
  return job.value("id", "");
}

// Polls GET /status/{id} until the job has finished (bounded): its view.
json WaitFinished(const ServerProcess& server, const std::string& id) {
  auto client = server.Client();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
  json job;
  while (std::chrono::steady_clock::now() < deadline) {
    auto answer = client->Get("/status/" + id);
    if (answer && answer->status == 200) {
      job = json::parse(answer->body);
      std::string status = job["status"];
      if (status == "success" || status == "error" || status == "canceled") return job;
    }
    ::poll(nullptr, 0, 100);
  }
  ADD_FAILURE() << "video job " << id << " did not finish: " << job.dump();
  return job;
}

std::string ResultPath(const ServerProcess& server, const json& job) {
  return server.data_dir() + "/results/" + job["filename"].get<std::string>();
}

// "segment=N" of each log line of `event` (the kv log format).
std::multiset<int> SegmentsIn(const std::string& log, const std::string& event) {
  std::multiset<int> segments;
  std::regex line("event=" + event + " [^\\n]*segment=([0-9]+)");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator(); ++it) {
    segments.insert(std::stoi((*it)[1]));
  }
  return segments;
}

TEST(ServerVideo, SegmentsRunOnBothLanesAndJoinKeepsFramesTimesAndAudio) {
  TempDir dir;
  std::string clip = MakeClip(dir.path(), 12);  // keyframes at frames 0, 4, 8: three segments
  ServerProcess server(CpuServer(dir.path() + "/data", {"--cpu-lanes", "2"}));
  ASSERT_TRUE(server.started());
  std::string id = Submit(server, clip);
  ASSERT_FALSE(id.empty());
  json done = WaitFinished(server, id);
  ASSERT_EQ(done["status"], "success") << done.dump();
  EXPECT_EQ(done["video"]["frames_done"], 12);
  EXPECT_EQ(done["video"]["frames_total"], 12);
  EXPECT_EQ(done["video"]["segments"], 3);
  EXPECT_EQ(done["progress"], 1.0);

  // The store's record of the segment jobs: both lanes used, and two segments
  // running at the same time (one started before the other finished).
  auto client = server.Client();
  auto listed = client->Get("/jobs?kind=video_segment&order=oldest");
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->status, 200) << listed->body;
  json segments = json::parse(listed->body)["jobs"];
  ASSERT_EQ(segments.size(), 3u);
  std::set<std::string> lanes;
  bool overlapped = false;
  for (const json& a : segments) {
    EXPECT_EQ(a["status"], "success");
    lanes.insert(a["lane"].get<std::string>());
    for (const json& b : segments) {
      if (a["id"] == b["id"]) continue;
      // ISO-8601 UTC with milliseconds compares as text.
      if (a["started_at"] < b["finished_at"] && b["started_at"] < a["finished_at"]) overlapped = true;
    }
  }
  EXPECT_EQ(lanes, (std::set<std::string>{"cpu:0", "cpu:1"}));
  EXPECT_TRUE(overlapped) << segments.dump(1);

  std::string result = ResultPath(server, done);
  ASSERT_TRUE(std::filesystem::exists(result));
  EXPECT_EQ(ProbeCsv(result, {"-select_streams", "v:0", "-show_entries", "stream=width,height", "-of", "csv=p=0"}),
            "128,96\n");
  std::string in_times = FrameTimes(clip);
  EXPECT_EQ(std::count(in_times.begin(), in_times.end(), '\n'), 12);
  EXPECT_EQ(FrameTimes(result), in_times);
  EXPECT_EQ(AudioMd5(result), AudioMd5(clip));
  // The file is served like any result.
  auto file = client->Get("/files/" + done["filename"].get<std::string>());
  ASSERT_TRUE(file);
  EXPECT_EQ(file->status, 200);
  EXPECT_EQ(file->body.size(), std::filesystem::file_size(result));
}

TEST(ServerVideo, ResumesAfterKillWithoutRunningAFinishedSegmentAgain) {
  TempDir dir;
  std::string clip = MakeClip(dir.path(), 16);  // four keyframes: four segments on two lanes

  // The reference: the same clip, uninterrupted, on a server of its own.
  std::string reference_frames;
  std::string reference_times;
  {
    ServerProcess reference(CpuServer(dir.path() + "/reference", {"--cpu-lanes", "2"}));
    ASSERT_TRUE(reference.started());
    json done = WaitFinished(reference, Submit(reference, clip));
    ASSERT_EQ(done["status"], "success") << done.dump();
    reference_frames = DecodedFrameMd5s(ResultPath(reference, done));
    reference_times = FrameTimes(ResultPath(reference, done));
  }

  const std::string data = dir.path() + "/data";
  std::string id;
  std::string first_life;
  {
    ServerProcess server(CpuServer(data, {"--cpu-lanes", "2"}));
    ASSERT_TRUE(server.started());
    id = Submit(server, clip);
    ASSERT_FALSE(id.empty());
    // Killed as soon as one segment is done: the others are running or queued
    // (each run loads the model, which takes far longer than this poll).
    ASSERT_TRUE(server.WaitForLog("event=video_segment_done", std::chrono::seconds(120))) << server.stderr_text();
    server.Kill();
    first_life = server.stderr_text();
  }
  std::multiset<int> done_before = SegmentsIn(first_life, "video_segment_done");
  ASSERT_FALSE(done_before.empty());
  ASSERT_LT(done_before.size(), 4u) << "every segment finished before the kill: nothing left to resume";

  ServerProcess restarted(CpuServer(data, {"--cpu-lanes", "2"}));
  ASSERT_TRUE(restarted.started());
  json done = WaitFinished(restarted, id);
  ASSERT_EQ(done["status"], "success") << done.dump();
  // The restarted server appends to the same log file: its own lines follow the first life's.
  std::string second_life = restarted.stderr_text();
  if (second_life.rfind(first_life, 0) == 0) second_life = second_life.substr(first_life.size());
  std::multiset<int> started_after = SegmentsIn(second_life, "video_segment_started");
  for (int segment : done_before) {
    EXPECT_EQ(started_after.count(segment), 0u) << "segment " << segment << " finished before the kill but ran again";
  }
  // Every segment not finished before the kill ran once more, and only once.
  for (int segment = 0; segment < 4; ++segment) {
    if (done_before.count(segment)) continue;
    EXPECT_EQ(started_after.count(segment) + SegmentsIn(second_life, "video_segment_found").count(segment), 1u)
        << "segment " << segment;
  }
  EXPECT_NE(second_life.find("event=video_job_resumed"), std::string::npos);

  // The same output as the uninterrupted run: the same frame times, and every
  // decoded frame identical (MD5 of each frame's pixels).
  std::string result = ResultPath(restarted, done);
  EXPECT_EQ(FrameTimes(result), reference_times);
  EXPECT_EQ(FrameTimes(result), FrameTimes(clip));
  EXPECT_EQ(DecodedFrameMd5s(result), reference_frames);
  EXPECT_EQ(AudioMd5(result), AudioMd5(clip));
}

TEST(ServerVideo, ACrashBetweenTheVideoAndItsSegmentsIsRepairedOnRestart) {
  TempDir dir;
  std::string clip = MakeClip(dir.path(), 8);
  const std::string data = dir.path() + "/data";
  {
    ServerProcess server(CpuServer(data, {"--test-failpoints", "video.crash_before_segments"}));
    ASSERT_TRUE(server.started());
    auto client = server.Client();
    auto answer = client->Post(std::string("/upscale/video?model=") + kModel, ReadWholeFile(clip),
                               "application/octet-stream");
    EXPECT_FALSE(answer) << "the server answered " << answer->status << " instead of dying";
    EXPECT_NE(server.WaitExit(std::chrono::seconds(30)), -1);
  }
  ServerProcess restarted(CpuServer(data, {"--cpu-lanes", "2"}));
  ASSERT_TRUE(restarted.started());
  auto client = restarted.Client();
  auto listed = client->Get("/jobs?kind=video");
  ASSERT_TRUE(listed);
  json videos = json::parse(listed->body)["jobs"];
  ASSERT_EQ(videos.size(), 1u) << listed->body;
  json done = WaitFinished(restarted, videos[0]["id"]);
  ASSERT_EQ(done["status"], "success") << done.dump();
  EXPECT_NE(restarted.stderr_text().find("event=video_segments_restored"), std::string::npos);
  EXPECT_EQ(FrameTimes(ResultPath(restarted, done)), FrameTimes(clip));
}

TEST(ServerVideo, CancelStopsEverySegment) {
  TempDir dir;
  std::string clip = MakeClip(dir.path(), 16);
  ServerProcess server(CpuServer(dir.path() + "/data", {"--cpu-lanes", "1"}));
  ASSERT_TRUE(server.started());
  std::string id = Submit(server, clip);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(server.WaitForLog("event=video_segment_started", std::chrono::seconds(60))) << server.stderr_text();
  auto client = server.Client();
  auto deleted = client->Delete("/jobs?ids=" + id);
  ASSERT_TRUE(deleted);
  ASSERT_EQ(deleted->status, 200) << deleted->body;
  EXPECT_EQ(json::parse(deleted->body)["canceled"], json::array({id}));
  auto video = client->Get("/status/" + id);
  ASSERT_TRUE(video);
  EXPECT_EQ(json::parse(video->body)["status"], "canceled") << video->body;
  // Every segment is canceled (the running one's child killed), none left to run.
  auto listed = client->Get("/jobs?kind=video_segment");
  ASSERT_TRUE(listed);
  json segments = json::parse(listed->body)["jobs"];
  ASSERT_EQ(segments.size(), 2u);  // one lane: two segments
  for (const json& segment : segments) EXPECT_EQ(segment["status"], "canceled") << segment.dump();
  // DELETE returns once the running segment has left its lane: its child is gone.
  std::string log = server.stderr_text();
  EXPECT_TRUE(std::regex_search(log, std::regex("event=command_exited [^\\n]*canceled"))) << log;
  EXPECT_EQ(server.stderr_text().find("event=video_segment_done"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(ResultPath(server, json::parse(video->body))));
}

TEST(ServerVideo, ASegmentWhoseWorkerIsKilledRunsAgainAndTheVideoCompletes) {
  TempDir dir;
  std::string clip = MakeClip(dir.path(), 16);
  ServerProcess server(CpuServer(dir.path() + "/data", {"--cpu-lanes", "1"}));
  ASSERT_TRUE(server.started());
  std::string id = Submit(server, clip);
  ASSERT_FALSE(id.empty());
  // The first segment's child, as the OOM killer or an operator would kill it.
  ASSERT_TRUE(server.WaitForLog("event=video_segment_started", std::chrono::seconds(60))) << server.stderr_text();
  std::smatch found;
  std::string log = server.stderr_text();
  ASSERT_TRUE(std::regex_search(log, found, std::regex("event=video_segment_started [^\n]*segment=([0-9]+)[^\n]* pid=([0-9]+)")))
      << log;
  const int killed_segment = std::stoi(found[1]);
  ASSERT_EQ(::kill(std::stoi(found[2]), SIGKILL), 0);

  json done = WaitFinished(server, id);
  ASSERT_EQ(done["status"], "success") << done.dump();
  log = server.stderr_text();
  // The killed segment ran twice (its job's attempt 2), every other one once.
  std::multiset<int> started = SegmentsIn(log, "video_segment_started");
  EXPECT_EQ(started.count(killed_segment), 2u) << log;
  EXPECT_EQ(started.size(), 3u) << log;  // one lane: two segments, one run again
  EXPECT_EQ(FrameTimes(ResultPath(server, done)), FrameTimes(clip));
}

TEST(ServerVideo, ADamagedVideoFailsNamingTheSegmentAndTheFrame) {
  TempDir dir;
  std::string clip = MakeClip(dir.path(), 12);
  // Bytes in the middle of the file (inside the frames' data) overwritten.
  std::string bytes = ReadWholeFile(clip);
  for (size_t i = bytes.size() / 3; i < bytes.size() / 2; ++i) bytes[i] = 0x55;
  std::string damaged = dir.path() + "/damaged.mp4";
  std::ofstream(damaged, std::ios::binary) << bytes;
  ServerProcess server(CpuServer(dir.path() + "/data", {"--cpu-lanes", "2"}));
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  auto answer = client->Post("/upscale/video?model=lanczos", bytes, "application/octet-stream");
  ASSERT_TRUE(answer);
  // The container's index is intact, so the probe and the demux-only cut pass
  // (nothing is decoded before work) accept it: the damage is found decoding.
  ASSERT_EQ(answer->status, 202) << answer->body;
  json done = WaitFinished(server, json::parse(answer->body)["id"]);
  EXPECT_EQ(done["status"], "error") << done.dump();
  std::string error = done["error"];
  EXPECT_TRUE(std::regex_search(error, std::regex("^segment [0-9]+ failed: segment [0-9]+ \\(range [0-9]*:[0-9]*\\) "
                                                  "failed \\(exit code 1\\): .*frame [0-9]+")))
      << error;
  EXPECT_FALSE(std::filesystem::exists(ResultPath(server, done)));
}

TEST(ServerVideo, RefusesWhatIsNotAVideoAndVideosOverTheLimits) {
  TempDir dir;
  std::string clip = MakeClip(dir.path(), 8);
  ServerProcess server(CpuServer(dir.path() + "/data", {"--max-video-frames", "4"}));
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  auto too_long = client->Post(std::string("/upscale/video?model=") + kModel, ReadWholeFile(clip), "application/octet-stream");
  ASSERT_TRUE(too_long);
  EXPECT_EQ(too_long->status, 409) << too_long->body;
  EXPECT_NE(too_long->body.find("max-video-frames"), std::string::npos) << too_long->body;
  auto not_video = client->Post("/upscale/video?model=lanczos", std::string(4096, 'x'), "application/octet-stream");
  ASSERT_TRUE(not_video);
  EXPECT_EQ(not_video->status, 415) << not_video->body;
  // Nothing was queued, and nothing was left in the uploads.
  auto listed = client->Get("/jobs");
  ASSERT_TRUE(listed);
  EXPECT_EQ(json::parse(listed->body)["jobs"].size(), 0u);
  for (const auto& entry : std::filesystem::directory_iterator(server.data_dir() + "/uploads")) {
    ADD_FAILURE() << "left in uploads: " << entry.path();
  }
}

}  // namespace
}  // namespace tessera::test
