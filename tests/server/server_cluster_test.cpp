// Several `tessera serve` processes on one PostgreSQL database are one service
// (issue 18, docs/cluster.md): one queue claimed by every node's lanes, each job
// run exactly once, a killed node's jobs taken back, a cancel heard on any node,
// results reachable from any node. Real servers, real PostgreSQL (the test
// cluster), the fake generator standing in for generate.py.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "../support/test_images.h"
#include "cluster_fixture.h"

namespace tessera::test {
namespace {

using nlohmann::json;
using store::testing::PgTestSchema;
using Clock = std::chrono::steady_clock;

// GET /events on one node, read on a thread of its own: every event's id and
// its job's id and status, in the order they came. Ends with the object.
class EventStream {
 public:
  struct Seen {
    uint64_t id = 0;
    std::string job_id;
    std::string status;
  };

  EventStream(int port, const std::string& path) : client_("127.0.0.1", port) {
    client_.set_read_timeout(120, 0);
    thread_ = std::thread([this, path] {
      std::string buffer;
      client_.Get(path.c_str(), [&](const char* data, size_t size) {
        buffer.append(data, size);
        for (size_t end; (end = buffer.find("\n\n")) != std::string::npos;) {
          Take(buffer.substr(0, end));
          buffer.erase(0, end + 2);
        }
        return !stopping_;
      });
    });
  }
  ~EventStream() {
    stopping_ = true;
    client_.stop();
    thread_.join();
  }

  std::vector<Seen> events() {
    std::lock_guard lock(mutex_);
    return events_;
  }
  // The events of one job.
  std::vector<Seen> Of(const std::string& job_id) {
    std::vector<Seen> of;
    for (const Seen& seen : events()) {
      if (seen.job_id == job_id) of.push_back(seen);
    }
    return of;
  }
  bool Saw(const std::string& job_id, const std::string& status) {
    for (const Seen& seen : Of(job_id)) {
      if (seen.status == status) return true;
    }
    return false;
  }

 private:
  void Take(const std::string& frame) {
    Seen seen;
    std::istringstream lines(frame);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("id: ", 0) == 0) seen.id = std::stoull(line.substr(4));
      if (line.rfind("data: ", 0) == 0) {
        json data = json::parse(line.substr(6), nullptr, false);
        if (data.is_object()) {
          seen.job_id = data.value("id", "");
          seen.status = data.value("status", "");
        }
      }
    }
    if (seen.id == 0) return;  // a keep-alive comment
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(seen));
  }

  httplib::Client client_;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::vector<Seen> events_;
  std::thread thread_;
};

std::vector<uint64_t> IdsOf(const std::vector<EventStream::Seen>& events) {
  std::vector<uint64_t> ids;
  for (const auto& seen : events) ids.push_back(seen.id);
  return ids;
}

// A node's /metrics value of `name` (-1 when absent).
int64_t MetricOf(httplib::Client& client, const std::string& name) {
  auto metrics = client.Get("/metrics");
  if (!metrics || metrics->status != 200) return -1;
  std::istringstream lines(metrics->body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name + " ", 0) == 0) return std::stoll(line.substr(name.size() + 1));
  }
  return -1;
}

TEST_F(ClusterFixture, EveryNodesEventsCarryTheClustersIdsAndAClientResumesOnAnotherNode) {
  // B's only lane is held by a job that never ends; the job followed runs on
  // A's only lane, blocked after its first step until released.
  const std::string release = dir_.path() + "/release";
  auto b = StartNode("node-b", 1, {"--drain-timeout-s", "0"}, {{"FAKE_GENERATE_BLOCK_FILE", dir_.path() + "/never"}});
  ASSERT_TRUE(b->started());
  std::string holder = Submit(*b->Client(), "holds b's lane");
  ASSERT_TRUE(WaitFor([&] { return Column(holder, "status") == "running"; }, std::chrono::seconds(30)));
  auto a = StartNode("node-a", 1, {"--drain-timeout-s", "0"}, {{"FAKE_GENERATE_BLOCK_FILE", release}});
  ASSERT_TRUE(a->started());

  EventStream on_a(a->port(), "/events");
  EventStream on_b(b->port(), "/events");
  ASSERT_TRUE(
      WaitFor([&] { return MetricOf(*a->Client(), "tessera_event_subscribers") == 1; }, std::chrono::seconds(10)));
  ASSERT_TRUE(
      WaitFor([&] { return MetricOf(*b->Client(), "tessera_event_subscribers") == 1; }, std::chrono::seconds(10)));

  std::string id = Submit(*a->Client(), "followed from node b");
  ASSERT_TRUE(WaitFor([&] { return on_b.Saw(id, "running"); }, std::chrono::seconds(30))) << b->stderr_text();
  EXPECT_EQ(Column(id, "node"), "node-a");
  std::ofstream(release) << "go";
  ASSERT_TRUE(WaitFor([&] { return Column(id, "status") == "success"; }, std::chrono::seconds(30)));

  // The database's event ids, the same on both nodes: every write of the job
  // (its insert, claim, progress, result), each once, in order.
  std::vector<uint64_t> database_ids;
  auto rows = schema_->raw().Exec("job events", "SELECT id FROM job_events WHERE job_id = $1 ORDER BY id",
                                  store::pg::PgParams().Text(id));
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  for (int row = 0; row < rows->rows(); ++row) database_ids.push_back(static_cast<uint64_t>(rows->Int(row, 0)));
  ASSERT_GE(database_ids.size(), 3u);
  auto reached = [&](EventStream& stream) {
    auto seen = stream.Of(id);
    return !seen.empty() && seen.back().id >= database_ids.back();
  };
  ASSERT_TRUE(WaitFor([&] { return reached(on_a) && reached(on_b); }, std::chrono::seconds(10))) << b->stderr_text();
  EXPECT_EQ(IdsOf(on_b.Of(id)), database_ids);
  EXPECT_EQ(IdsOf(on_a.Of(id)), database_ids);
  EXPECT_EQ(on_b.Of(id).back().status, "success");

  // Resumed on A after the first event B showed it running: exactly what
  // followed on A's own stream, up to the job's last event.
  uint64_t resume_after = 0;
  for (const auto& seen : on_b.Of(id)) {
    if (seen.status == "running") {
      resume_after = seen.id;
      break;
    }
  }
  ASSERT_GT(resume_after, 0u);
  const uint64_t last = database_ids.back();
  std::vector<uint64_t> expected;
  for (uint64_t seen : IdsOf(on_a.events())) {
    if (seen > resume_after && seen <= last) expected.push_back(seen);
  }
  {
    EventStream resumed(a->port(), "/events?last_event_id=" + std::to_string(resume_after));
    ASSERT_TRUE(WaitFor(
        [&] {
          auto seen = resumed.events();
          return !seen.empty() && seen.back().id >= last;
        },
        std::chrono::seconds(10)));
    EXPECT_EQ(IdsOf(resumed.events()), expected);
  }
  // The Last-Event-ID header, the same.
  httplib::Client header_client("127.0.0.1", a->port());
  std::vector<uint64_t> by_header;
  std::string buffer;
  header_client.Get("/events", httplib::Headers{{"Last-Event-ID", std::to_string(resume_after)}},
                    [&](const char* data, size_t size) {
                      buffer.append(data, size);
                      for (size_t at; (at = buffer.find("id: ")) != std::string::npos;) {
                        size_t end = buffer.find('\n', at);
                        if (end == std::string::npos) break;
                        by_header.push_back(std::stoull(buffer.substr(at + 4, end - at - 4)));
                        buffer.erase(0, end);
                      }
                      return by_header.empty() || by_header.back() < last;
                    });
  EXPECT_EQ(by_header, expected);
}

TEST_F(ClusterFixture, AnUpscaleWaitedForOnOneNodeAnswersWhenAnotherNodeFinishedIt) {
  // B's only lane is busy for good: the upscale submitted to B runs on A.
  auto b = StartNode("node-b", 1, {"--drain-timeout-s", "0"}, {{"FAKE_GENERATE_BLOCK_FILE", dir_.path() + "/never"}});
  ASSERT_TRUE(b->started());
  std::string holder = Submit(*b->Client(), "holds b's lane");
  ASSERT_TRUE(WaitFor([&] { return Column(holder, "status") == "running"; }, std::chrono::seconds(30)));
  auto a = StartNode("node-a", 1);
  ASSERT_TRUE(a->started());

  std::vector<uint8_t> png = SolidPng(6, 5, {10, 20, 30});
  // A wait of a minute for a job that takes a moment: had B not heard the job
  // finish, it would answer only when the minute ran out.
  const auto asked = Clock::now();
  auto answer = b->Client()->Post("/upscale?model=lanczos&scale=2&wait=true&timeout=60",
                                  std::string(png.begin(), png.end()), "image/png");
  const auto waited = Clock::now() - asked;
  ASSERT_TRUE(answer);
  ASSERT_EQ(answer->status, 200) << answer->body;
  EXPECT_LT(waited, std::chrono::seconds(30)) << "B answered only when its wait ran out";
  std::string id = answer->get_header_value("X-Tessera-Job-Id");
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(Column(id, "node"), "node-a");
  EXPECT_EQ(Column(id, "status"), "success");
}

TEST_F(ClusterFixture, ThreeServersFourLanesRunEveryJobExactlyOnceInFifoOrderPerLane) {
  std::vector<std::unique_ptr<ServerProcess>> nodes;
  nodes.push_back(StartNode("node-a", 2));
  nodes.push_back(StartNode("node-b", 1));
  nodes.push_back(StartNode("node-c", 1));
  for (auto& node : nodes) ASSERT_TRUE(node->started());
  std::vector<std::unique_ptr<httplib::Client>> clients;
  for (auto& node : nodes) clients.push_back(node->Client());

  constexpr int kUpscales = 300;
  constexpr int kGenerates = 30;
  std::vector<std::string> ids;
  std::set<std::string> prompts;
  for (int i = 0; i < kUpscales + kGenerates; ++i) {
    httplib::Client& client = *clients[i % clients.size()];  // round-robin over the nodes
    if (i % 11 == 5 && prompts.size() < kGenerates) {
      std::string prompt = "cluster job " + std::to_string(i);
      prompts.insert(prompt);
      ids.push_back(Submit(client, prompt));
    } else {
      std::vector<uint8_t> png = SolidPng(4 + i % 5, 3 + i % 4, {static_cast<uint8_t>(i), 90, 200});
      ids.push_back(SubmitUpscale(client, std::string(png.begin(), png.end())));
    }
    ASSERT_FALSE(ids.back().empty());
  }
  const int64_t total = static_cast<int64_t>(ids.size());
  ASSERT_TRUE(WaitFor([&] { return Count("status IN ('success', 'error', 'canceled')") == total; },
                      std::chrono::seconds(600)))
      << Count("status = 'queued'") << " queued, " << Count("status = 'running'") << " running";

  EXPECT_EQ(Count("status = 'success'"), total);
  // Exactly once: one start per job, and the generator ran once per prompt.
  EXPECT_EQ(Count("attempts <> 1"), 0);
  auto runs = Invocations();
  EXPECT_EQ(runs.size(), prompts.size());
  for (const std::string& prompt : prompts) EXPECT_EQ(runs[prompt], 1) << prompt;
  // Every lane of every node took part, and each ran its jobs in submission order.
  auto lanes = schema_->raw().Exec("lanes", "SELECT lane, seq FROM jobs ORDER BY lane, started_ms, seq");
  ASSERT_TRUE(lanes.ok()) << lanes.status().ToString();
  std::map<std::string, int64_t> last_seq;
  for (int row = 0; row < lanes->rows(); ++row) {
    std::string lane = lanes->Text(row, 0);
    int64_t seq = lanes->Int(row, 1);
    EXPECT_GT(seq, last_seq[lane]) << "lane " << lane << " ran seq " << seq << " after " << last_seq[lane];
    last_seq[lane] = seq;
  }
  EXPECT_EQ(last_seq.size(), 4u);
  for (const char* lane : {"node-a/cpu:0", "node-a/cpu:1", "node-b/cpu:0", "node-c/cpu:0"}) {
    EXPECT_TRUE(last_seq.count(lane)) << lane << " ran nothing";
  }
  // Every result from every node (the results directory is shared).
  for (size_t i = 0; i < ids.size(); i += 37) {
    std::string name = Column(ids[i], "filename");
    for (auto& client : clients) {
      auto file = client->Get(("/files/" + name).c_str());
      ASSERT_TRUE(file);
      EXPECT_EQ(file->status, 200) << name;
    }
  }
}

TEST_F(ClusterFixture, AKilledNodesJobsAreTakenBackAfterItsLeaseAndRunOnceMoreElsewhere) {
  const std::string release = dir_.path() + "/release";
  auto b = StartNode("node-b", 1, {}, {{"FAKE_GENERATE_BLOCK_FILE", release}});
  ASSERT_TRUE(b->started());
  auto b_client = b->Client();
  // Running on B (its only lane), then one upscale whose input reached B only
  // through B, queued behind it.
  std::string blocked = Submit(*b_client, "taken back from a dead node");
  ASSERT_TRUE(WaitFor([&] { return Column(blocked, "status") == "running"; }, std::chrono::seconds(30)));
  ASSERT_EQ(Column(blocked, "node"), "node-b");
  ASSERT_TRUE(WaitFor([&] { return Invocations()["taken back from a dead node"] == 1; }, std::chrono::seconds(30)));
  std::vector<uint8_t> png = SolidPng(5, 4, {1, 2, 3});
  std::string upscale = SubmitUpscale(*b_client, std::string(png.begin(), png.end()));
  ASSERT_FALSE(upscale.empty());

  auto a = StartNode("node-a", 1, {}, {{"FAKE_GENERATE_BLOCK_FILE", release}});
  ASSERT_TRUE(a->started());
  b->Kill();
  // A takes the reaper's lock, gives every node one more lease, then takes B's
  // running job back; its lane claims both jobs.
  ASSERT_TRUE(WaitFor([&] { return Column(blocked, "node") == "node-a" && Column(blocked, "status") == "running"; },
                      std::chrono::seconds(60)))
      << Column(blocked, "status") << " on " << Column(blocked, "node") << "\n" << a->stderr_text();
  EXPECT_EQ(Column(blocked, "attempts"), "2");
  std::ofstream(release) << "go";
  ASSERT_TRUE(WaitFor([&] { return Column(blocked, "status") == "success" && Column(upscale, "status") == "success"; },
                      std::chrono::seconds(60)))
      << Column(blocked, "status") << " / " << Column(upscale, "status") << " " << Column(upscale, "error");
  EXPECT_EQ(Column(upscale, "node"), "node-a");

  // B comes back under the same node id: it runs neither job again.
  auto b_again = StartNode("node-b", 1);
  ASSERT_TRUE(b_again->started());
  std::string after = Submit(*b_again->Client(), "after the restart");
  ASSERT_TRUE(WaitFor([&] { return Column(after, "status") == "success"; }, std::chrono::seconds(60)));
  EXPECT_EQ(Column(blocked, "attempts"), "2");
  EXPECT_EQ(Column(upscale, "attempts"), "1");
  EXPECT_EQ(Invocations()["taken back from a dead node"], 2) << ReadWholeFile(invocations_);  // B's run, then A's
}

TEST_F(ClusterFixture, ANodeDeclaredDeadStopsItsStaleWorkWhenItComesBack) {
  const std::string pidfile = dir_.path() + "/generator.pid";
  const std::string release = dir_.path() + "/release";
  auto b = StartNode("node-b", 1, {},
                     {{"FAKE_GENERATE_BLOCK_FILE", release}, {"FAKE_GENERATE_PIDFILE", pidfile}});
  ASSERT_TRUE(b->started());
  std::string id = Submit(*b->Client(), "outlived its node's lease");
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(pidfile) && Column(id, "status") == "running"; },
                      std::chrono::seconds(30)));
  const pid_t stale = std::stoi(ReadWholeFile(pidfile));
  std::filesystem::remove(pidfile);
  // B has been the reaper (it was alone): freezing must not leave the cluster
  // without one.
  ASSERT_TRUE(b->WaitForLog("event=reaper_started", std::chrono::seconds(30))) << b->stderr_text();
  auto a = StartNode("node-a", 1, {}, {{"FAKE_GENERATE_BLOCK_FILE", release}, {"FAKE_GENERATE_PIDFILE", pidfile}});
  ASSERT_TRUE(a->started());
  // B freezes (a long GC pause, a stalled VM) for longer than its lease: A
  // takes the job back and runs it. (A failed assertion must not leave B
  // stopped: its stop at the end of the test would wait for ever.)
  struct Thaw {
    ServerProcess& node;
    ~Thaw() { node.SendSignal(SIGCONT); }
  } thaw{*b};
  b->SendSignal(SIGSTOP);
  ASSERT_TRUE(WaitFor([&] { return Column(id, "node") == "node-a" && std::filesystem::exists(pidfile); },
                      std::chrono::seconds(60)))
      << a->stderr_text();
  // B wakes up: its renewal is refused, it stops the run the cluster took
  // back, and its late writes change nothing.
  b->SendSignal(SIGCONT);
  ASSERT_TRUE(b->WaitForLog("event=node_lease_lost", std::chrono::seconds(30))) << b->stderr_text();
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (::kill(stale, 0) == 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_NE(::kill(stale, 0), 0) << "node-b's stale generator still runs\n" << b->stderr_text();
  EXPECT_EQ(Column(id, "node"), "node-a");
  EXPECT_EQ(Column(id, "status"), "running");
  std::ofstream(release) << "go";
  ASSERT_TRUE(WaitFor([&] { return Column(id, "status") == "success"; }, std::chrono::seconds(60)));
  EXPECT_EQ(Column(id, "node"), "node-a");
  EXPECT_EQ(Column(id, "attempts"), "2");
}

TEST_F(ClusterFixture, ACancelOnOneNodeStopsTheProcessRunningOnAnother) {
  const std::string pidfile = dir_.path() + "/generator.pid";
  auto a = StartNode("node-a", 1, {},
                     {{"FAKE_GENERATE_BLOCK_FILE", dir_.path() + "/never"}, {"FAKE_GENERATE_PIDFILE", pidfile}});
  ASSERT_TRUE(a->started());
  std::string id = Submit(*a->Client(), "canceled from elsewhere");
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(pidfile) && Column(id, "status") == "running"; },
                      std::chrono::seconds(30)));
  const pid_t generator = std::stoi(ReadWholeFile(pidfile));
  ASSERT_EQ(::kill(generator, 0), 0);

  auto b = StartNode("node-b", 1);
  ASSERT_TRUE(b->started());
  auto answer = b->Client()->Delete(("/jobs?ids=" + id).c_str());
  ASSERT_TRUE(answer);
  ASSERT_EQ(answer->status, 200) << answer->body;
  EXPECT_EQ(Column(id, "status"), "canceled");
  // Gone within 2 s: A heard the message (or, had it been lost, its next check).
  auto deadline = Clock::now() + std::chrono::seconds(2);
  while (::kill(generator, 0) == 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_NE(::kill(generator, 0), 0) << "the generator on node-a still runs\n" << a->stderr_text();
  EXPECT_EQ(Column(id, "status"), "canceled");  // A's late write did not undo it
}

TEST_F(ClusterFixture, AQueuedJobsPositionCountsTheWholeClustersQueueOnAnyNode) {
  const std::string block = dir_.path() + "/never";
  auto a = StartNode("node-a", 1, {}, {{"FAKE_GENERATE_BLOCK_FILE", block}});
  ASSERT_TRUE(a->started());
  std::string running = Submit(*a->Client(), "holds the only lane");
  ASSERT_TRUE(WaitFor([&] { return Column(running, "status") == "running"; }, std::chrono::seconds(30)));
  auto b = StartNode("node-b", 1, {"--drain-timeout-s", "0"}, {{"FAKE_GENERATE_BLOCK_FILE", block}});
  ASSERT_TRUE(b->started());
  std::string b_running = Submit(*b->Client(), "holds b's lane");
  ASSERT_TRUE(WaitFor([&] { return Column(b_running, "status") == "running"; }, std::chrono::seconds(30)));
  // Three queued behind them, submitted to both nodes.
  std::vector<std::string> queued = {Submit(*a->Client(), "first"), Submit(*b->Client(), "second"),
                                     Submit(*a->Client(), "third")};
  // Each node ranks against a snapshot of the queue at most half a second old:
  // the third is third in line once both have looked again.
  for (auto* node : {a.get(), b.get()}) {
    auto client = node->Client();
    EXPECT_TRUE(WaitFor(
        [&] {
          auto status = client->Get(("/status/" + queued[2]).c_str());
          return status && status->status == 200 && json::parse(status->body).value("queue_position", 0) == 3;
        },
        std::chrono::seconds(10)))
        << node->stderr_text();
  }
  auto first = a->Client()->Get(("/status/" + queued[0]).c_str());
  ASSERT_TRUE(first);
  EXPECT_EQ(json::parse(first->body)["queue_position"], 1) << first->body;
}

TEST_F(ClusterFixture, LanesAndMetricsShowEveryNodeOfTheCluster) {
  const std::string block = dir_.path() + "/never";
  auto a = StartNode("node-a", 2, {}, {{"FAKE_GENERATE_BLOCK_FILE", block}});
  ASSERT_TRUE(a->started());
  std::string running = Submit(*a->Client(), "runs on node a");
  ASSERT_TRUE(WaitFor([&] { return Column(running, "status") == "running"; }, std::chrono::seconds(30)));
  const std::string lane = Column(running, "lane");
  auto b = StartNode("node-b", 1, {}, {{"FAKE_GENERATE_BLOCK_FILE", block}});
  ASSERT_TRUE(b->started());

  auto answer = b->Client()->Get("/lanes");
  ASSERT_TRUE(answer);
  ASSERT_EQ(answer->status, 200);
  json lanes = json::parse(answer->body);
  std::map<std::string, json> by_name;
  for (const json& entry : lanes["lanes"]) by_name[entry["name"]] = entry;
  ASSERT_EQ(by_name.size(), 3u) << answer->body;
  for (const char* name : {"node-a/cpu:0", "node-a/cpu:1", "node-b/cpu:0"}) ASSERT_TRUE(by_name.count(name)) << name;
  EXPECT_EQ(by_name[lane]["state"], "busy");
  EXPECT_EQ(by_name[lane]["running_job"], running);
  EXPECT_EQ(by_name[lane]["node"], "node-a");
  EXPECT_EQ(by_name["node-b/cpu:0"]["state"], "idle");
  EXPECT_EQ(lanes["nodes"].size(), 2u);
  EXPECT_EQ(lanes["queued"], 0);

  auto metrics = b->Client()->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("tessera_cluster_nodes{state=\"alive\"} 2"), std::string::npos) << metrics->body;
  EXPECT_NE(metrics->body.find("tessera_lane_busy{lane=\"node-b/cpu:0\"} 0"), std::string::npos) << metrics->body;
}

TEST_F(ClusterFixture, AResultOnAnotherNodeIsARedirectThere) {
  // Results kept per node (no shared results directory): B redirects to A.
  auto a = StartNode("node-a", 1, {"--results-dir", dir_.path() + "/results-a"});
  ASSERT_TRUE(a->started());
  std::string id = Submit(*a->Client(), "made on node a");
  ASSERT_TRUE(WaitFor([&] { return Column(id, "status") == "success"; }, std::chrono::seconds(60)));
  auto b = StartNode("node-b", 1, {"--results-dir", dir_.path() + "/results-b"});
  ASSERT_TRUE(b->started());
  std::string name = Column(id, "filename");
  auto redirect = b->Client()->Get(("/files/" + name).c_str());
  ASSERT_TRUE(redirect);
  ASSERT_EQ(redirect->status, 307) << redirect->body;
  std::string location = redirect->get_header_value("Location");
  EXPECT_EQ(location, "http://127.0.0.1:" + std::to_string(a->port()) + "/files/" + name);
  auto file = a->Client()->Get(("/files/" + name).c_str());
  ASSERT_TRUE(file);
  EXPECT_EQ(file->status, 200);
  // A name no job made is still a 404, not a redirect.
  auto missing = b->Client()->Get("/files/no-such-result.mp4");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

}  // namespace
}  // namespace tessera::test

namespace tessera::test {
namespace {

// A PostgreSQL server of this test's own (the other tests' cluster must not go
// down under them), stopped and started again mid-run.
class OwnPostgres {
 public:
  OwnPostgres() : record_(dir_.path() + "/cluster.record") {
    started_ = Run("start") == 0;
    if (started_) socket_dir_ = ReadWholeFile(record_).substr(0, ReadWholeFile(record_).find('\n'));
  }
  ~OwnPostgres() { Run("stop"); }
  bool started() const { return started_; }
  std::string url() const { return "postgresql:///postgres?host=" + socket_dir_ + "&user=postgres"; }
  int Run(const std::string& action) {
    std::string command = std::string("sh ") + TESSERA_PG_TEST_CLUSTER_SCRIPT + " " + action + " " + record_ + " >/dev/null";
    return std::system(command.c_str());
  }

 private:
  TempDir dir_;
  std::string record_;
  std::string socket_dir_;
  bool started_ = false;
};

TEST(ClusterOutage, TenSecondsWithoutTheDatabaseLoseNoAcknowledgedJob) {
  if (const char* pg = std::getenv("TESSERA_STORE_TESTS_PG"); pg && std::string(pg) == "off") {
    GTEST_SKIP() << "TESSERA_STORE_TESTS_PG=off";
  }
  OwnPostgres postgres;
  ASSERT_TRUE(postgres.started());
  TempDir dir;
  const std::string invocations = dir.path() + "/invocations.txt";
  auto node = [&](const std::string& name) {
    return std::make_unique<ServerProcess>(ServerOptions{
        dir.path() + "/" + name,
        {"--store", postgres.url(), "--node-id", name, "--shared-dir", dir.path() + "/shared", "--node-lease-s", "2",
         "--rate-limit-per-minute", "0"},
        {{"FAKE_GENERATE_STEPS", "6"}, {"FAKE_GENERATE_STEP_SECONDS", "0.5"},
         {"FAKE_GENERATE_INVOCATIONS", invocations}}});
  };
  auto a = node("node-a");
  auto b = node("node-b");
  ASSERT_TRUE(a->started() && b->started());
  std::vector<std::unique_ptr<httplib::Client>> clients;
  clients.push_back(a->Client());
  clients.push_back(b->Client());
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    auto response = clients[i % 2]->Post(
        "/generate", json{{"prompt", "outage " + std::to_string(i)}, {"size", "1280x720"}}.dump(), "application/json");
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 202) << response->body;
    ids.push_back(json::parse(response->body)["id"]);
  }
  // Both lanes busy, then the database goes away for 10 s.
  ASSERT_TRUE(a->WaitForLog("event=job_started", std::chrono::seconds(30)));
  ASSERT_TRUE(b->WaitForLog("event=job_started", std::chrono::seconds(30)));
  const auto outage = Clock::now();
  ASSERT_EQ(postgres.Run("pause"), 0);
  // What the database is needed for answers 503 with Retry-After meanwhile.
  for (auto& client : clients) {
    auto refused = client->Post("/generate", json{{"prompt", "during the outage"}, {"size", "1280x720"}}.dump(),
                                "application/json");
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 503) << refused->body;
    EXPECT_EQ(refused->get_header_value("Retry-After"), "5");
  }
  std::this_thread::sleep_for(std::chrono::seconds(10) - (Clock::now() - outage));  // the outage's length
  ASSERT_EQ(postgres.Run("resume"), 0);

  // Every acknowledged job completes, each generated once: the two that
  // finished while the database was away too, their results written once it
  // was back, and no node was taken for dead.
  auto raw = store::pg::PgConnection::Connect(postgres.url());
  ASSERT_TRUE(raw.ok()) << raw.status().ToString();
  auto finished = [&] {
    auto rows = (*raw)->Exec("count", "SELECT count(*) FROM jobs WHERE status = 'success' AND attempts = 1");
    return rows.ok() && rows->Int(0, 0) == static_cast<int64_t>(ids.size());
  };
  auto deadline = Clock::now() + std::chrono::seconds(120);
  while (!finished() && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto rows = (*raw)->Exec("list", "SELECT id, status, attempts, error FROM jobs ORDER BY seq");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->rows(), static_cast<int>(ids.size()));  // the refused submissions left no row
  for (int row = 0; row < rows->rows(); ++row) {
    EXPECT_EQ(rows->Text(row, 1), "success") << rows->Text(row, 0) << " " << rows->Text(row, 3);
    EXPECT_EQ(rows->Text(row, 2), "1") << rows->Text(row, 0);
  }
  std::map<std::string, int> runs;
  std::istringstream lines(ReadWholeFile(invocations));
  for (std::string line; std::getline(lines, line);) runs[line.substr(line.find(' ') + 1)] += 1;
  EXPECT_EQ(runs.size(), ids.size());
  for (const auto& [prompt, count] : runs) EXPECT_EQ(count, 1) << prompt;
  EXPECT_TRUE(a->WaitForLog("event=job_result_saved_late", std::chrono::seconds(1)) ||
              b->WaitForLog("event=job_result_saved_late", std::chrono::seconds(1)));
}

}  // namespace
}  // namespace tessera::test
