// Video jobs in a cluster (issues 18 and 19, docs/cluster.md, docs/video.md): a
// video is cut for every node's lanes, its segments run on every node, one node
// sequences and joins it, and when that node is killed another takes the video
// over and finishes it without running a finished segment again. Real servers
// on real PostgreSQL (the test cluster), clips made by the ffmpeg program.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "cluster_fixture.h"
#include "server_video_clips.h"

namespace tessera::test {
namespace {

using nlohmann::json;

constexpr const char* kModel = "realesr-animevideov3-x2";

class ClusterVideo : public ClusterFixture {
 protected:
  // Node `name` with one CPU lane, whatever GPUs the machine has.
  std::unique_ptr<ServerProcess> StartCpuNode(const std::string& name) {
    return StartNode(name, 1, {}, {{"GPU_IDS", ""}, {"NVIDIA_VISIBLE_DEVICES", "none"}});
  }

  // Waits until `nodes` nodes are registered and alive: a video is cut for the
  // lanes of the nodes registered when it is submitted.
  bool WaitForNodes(int nodes) {
    return WaitFor(
        [&] {
          auto row = schema_->raw().Exec("count nodes", "SELECT count(*) FROM nodes WHERE alive");
          return row.ok() && row->Int(0, 0) == nodes;
        },
        std::chrono::seconds(30));
  }

  std::string SubmitVideo(const ServerProcess& node, const std::string& clip) {
    auto answer = node.Client()->Post(std::string("/upscale/video?model=") + kModel, ReadWholeFile(clip),
                                      "application/octet-stream");
    EXPECT_TRUE(answer) << "no answer";
    if (!answer) return "";
    EXPECT_EQ(answer->status, 202) << answer->body;
    return json::parse(answer->body).value("id", "");
  }

  // The video's segments as the database has them: id -> (status, node, attempts, finished_ms).
  struct SegmentRow {
    std::string status, node, attempts, finished_ms;
  };
  std::map<std::string, SegmentRow> Segments(const std::string& video_id) {
    std::map<std::string, SegmentRow> rows;
    auto result = schema_->raw().Exec(
        "read segments",
        "SELECT id, status, coalesce(node, ''), attempts::text, finished_ms::text FROM jobs "
        "WHERE kind = 'video_segment' AND params_json LIKE '%' || $1 || '%'",
        store::pg::PgParams().Text(video_id));
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    if (!result.ok()) return rows;
    for (int i = 0; i < result->rows(); ++i) {
      rows[result->Text(i, 0)] = {result->Text(i, 1), result->Text(i, 2), result->Text(i, 3), result->Text(i, 4)};
    }
    return rows;
  }

  std::string ResultOf(const std::string& video_id) {
    return shared_ + "/results/" + Column(video_id, "filename");
  }
};

TEST_F(ClusterVideo, AVideoIsCutForEveryNodesLanesRunsOnEveryNodeAndIsJoinedOnce) {
  std::string clip = MakeClip(dir_.path(), 16);  // keyframes at 0, 4, 8, 12
  auto a = StartCpuNode("node-a");
  auto b = StartCpuNode("node-b");
  ASSERT_TRUE(a->started() && b->started());
  ASSERT_TRUE(WaitForNodes(2));

  std::string id = SubmitVideo(*a, clip);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitFor([&] { return Column(id, "status") == "success"; }, std::chrono::seconds(240)))
      << Column(id, "status") << " " << Column(id, "error") << "\n" << a->stderr_text() << b->stderr_text();

  // Two lanes in the cluster, two segments per lane: four segments (one node's
  // single lane alone would have made two).
  auto segments = Segments(id);
  ASSERT_EQ(segments.size(), 4u);
  std::set<std::string> nodes;
  for (const auto& [segment, row] : segments) {
    EXPECT_EQ(row.status, "success") << segment;
    EXPECT_EQ(row.attempts, "1") << segment;
    nodes.insert(row.node);
  }
  EXPECT_EQ(nodes, (std::set<std::string>{"node-a", "node-b"})) << "the segments ran on one node only";
  // One node claimed the video and joined it, once.
  EXPECT_EQ(Column(id, "attempts"), "1");
  const std::string sequencer = Column(id, "node");
  EXPECT_TRUE(sequencer == "node-a" || sequencer == "node-b") << sequencer;
  std::string logs = a->stderr_text() + b->stderr_text();
  size_t joins = 0;
  for (size_t at = logs.find("event=video_joined"); at != std::string::npos; at = logs.find("event=video_joined", at + 1)) {
    ++joins;
  }
  EXPECT_EQ(joins, 1u) << logs;

  // The result (in the shared directory) has every input frame at its time.
  EXPECT_EQ(FrameTimes(ResultOf(id)), FrameTimes(clip));
  // Every node answers the video's status with its frames.
  auto status = b->Client()->Get("/status/" + id);
  ASSERT_TRUE(status);
  json view = json::parse(status->body);
  EXPECT_EQ(view["status"], "success");
  EXPECT_EQ(view["video"]["frames_done"], 16);
  EXPECT_EQ(view["video"]["segments"], 4);
}

TEST_F(ClusterVideo, AVideoWhoseNodeIsKilledIsFinishedByAnotherWithoutRunningAFinishedSegmentAgain) {
  std::string clip = MakeClip(dir_.path(), 16);
  auto a = StartCpuNode("node-a");
  auto b = StartCpuNode("node-b");
  ASSERT_TRUE(a->started() && b->started());
  ASSERT_TRUE(WaitForNodes(2));

  // The reference: the same clip, uninterrupted, on the same two nodes.
  std::string reference = SubmitVideo(*a, clip);
  ASSERT_TRUE(WaitFor([&] { return Column(reference, "status") == "success"; }, std::chrono::seconds(240)))
      << Column(reference, "status") << " " << Column(reference, "error");

  std::string id = SubmitVideo(*b, clip);
  ASSERT_FALSE(id.empty());
  // Killed as soon as one segment is done (each segment's run loads the model,
  // far longer than this poll): the node that sequences the video.
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const auto& [segment, row] : Segments(id)) {
          if (row.status == "success") return Column(id, "status") == "running";
        }
        return false;
      },
      std::chrono::seconds(120)));
  const std::string sequencer = Column(id, "node");
  ASSERT_TRUE(sequencer == "node-a" || sequencer == "node-b") << sequencer;
  ServerProcess& killed = sequencer == "node-a" ? *a : *b;
  const std::string survivor = sequencer == "node-a" ? "node-b" : "node-a";
  killed.Kill();
  std::map<std::string, SegmentRow> at_kill = Segments(id);
  size_t finished_at_kill = 0;
  for (const auto& [segment, row] : at_kill) finished_at_kill += row.status == "success" ? 1 : 0;
  ASSERT_GE(finished_at_kill, 1u);
  ASSERT_LT(finished_at_kill, 4u) << "every segment finished before the kill: nothing left to take over";

  // The survivor's reaper requeues the video after the dead node's lease; its
  // runner claims it and finishes it.
  ASSERT_TRUE(WaitFor([&] { return Column(id, "status") == "success"; }, std::chrono::seconds(240)))
      << Column(id, "status") << " " << Column(id, "error");
  EXPECT_EQ(Column(id, "node"), survivor);
  EXPECT_EQ(Column(id, "attempts"), "2");
  std::map<std::string, SegmentRow> after = Segments(id);
  ASSERT_EQ(after.size(), 4u);
  for (const auto& [segment, row] : after) {
    EXPECT_EQ(row.status, "success") << segment;
    const SegmentRow& before = at_kill[segment];
    if (before.status == "success") {
      // Finished before the kill: never run again.
      EXPECT_EQ(row.attempts, "1") << segment;
      EXPECT_EQ(row.finished_ms, before.finished_ms) << segment;
    }
  }
  // The same output as the uninterrupted run: the same frame times, and every
  // decoded frame identical (MD5 of each frame's pixels).
  EXPECT_EQ(FrameTimes(ResultOf(id)), FrameTimes(ResultOf(reference)));
  EXPECT_EQ(DecodedFrameMd5s(ResultOf(id)), DecodedFrameMd5s(ResultOf(reference)));
}

}  // namespace
}  // namespace tessera::test
