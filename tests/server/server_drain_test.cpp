// SIGTERM drains a real `tessera serve` (docs/server.md, "Stopping"): new work
// is refused with 503 and Retry-After, no queued job starts, running jobs may
// finish until --drain-timeout-s, then what still runs goes back to the queue
// and the process exits 0. The generator is tests/fixtures/fake_generate.py, held
// mid-run by FAKE_GENERATE_BLOCK_FILE until the test creates that file.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>

#include "store/sqlite_job_store.h"
#include "../support/job_events.h"
#include "../support/process_wait.h"
#include "../support/server_process.h"

namespace tessera::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

json PostGenerate(httplib::Client& client, const std::string& prompt) {
  auto response = client.Post("/generate", json{{"prompt", prompt}, {"size", "1280x720"}}.dump(), "application/json");
  EXPECT_TRUE(response);
  if (!response) return json();
  EXPECT_EQ(response->status, 202) << response->body;
  return json::parse(response->body);
}

store::Job StoredJob(const std::string& data_dir, const std::string& id) {
  auto store = store::SqliteJobStore::Open(data_dir + "/state.db");
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return {};
  auto job = (*store)->Get(id);
  EXPECT_TRUE(job.ok()) << job.status().ToString();
  return job.ok() ? *job : store::Job{};
}

void ExpectCleanExit(int status, const ServerProcess& server) {
  ASSERT_NE(status, -1) << "the server did not exit\n" << server.stderr_text();
  EXPECT_TRUE(WIFEXITED(status)) << "wait status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << server.stderr_text();
}

TEST(ServerDrain, ARunningJobFinishesDuringTheDrainWhileNewWorkIsRefused) {
  TempDir dir;
  std::string data = dir.path() + "/data";
  std::string block = dir.path() + "/release";
  ServerProcess server({data, {"--drain-timeout-s", "120"}, {{"FAKE_GENERATE_BLOCK_FILE", block}}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  json running = PostGenerate(*client, "finishes during the drain");
  json waiting = PostGenerate(*client, "stays queued");  // one lane: behind the first
  ASSERT_EQ(WaitReportedProgress(*client, running["id"])["status"], "running");

  server.SendSignal(SIGTERM);
  // Logged once the lanes take no more work (and after /health says draining).
  ASSERT_TRUE(server.WaitForLog("event=scheduler_draining", 10s)) << server.stderr_text();

  auto refused = client->Post("/generate", json{{"prompt", "too late"}}.dump(), "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503) << refused->body;
  EXPECT_EQ(refused->get_header_value("Retry-After"), "5");
  EXPECT_NE(refused->body.find("draining"), std::string::npos) << refused->body;
  auto refused_upload = client->Post("/upscale?model=lanczos&scale=2", "not read", "image/png");
  ASSERT_TRUE(refused_upload);
  EXPECT_EQ(refused_upload->status, 503) << refused_upload->body;
  auto health = client->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  EXPECT_EQ(json::parse(health->body)["status"], "draining");
  // Reads still answer during the drain.
  auto status = client->Get(("/status/" + waiting["id"].get<std::string>()).c_str());
  ASSERT_TRUE(status);
  EXPECT_EQ(status->status, 200);
  EXPECT_EQ(json::parse(status->body)["status"], "queued");

  std::ofstream(block) << "go";
  ExpectCleanExit(server.WaitExit(60s), server);

  store::Job finished = StoredJob(data, running["id"]);
  EXPECT_EQ(finished.status, store::JobStatus::kSuccess) << finished.error;
  EXPECT_EQ(finished.attempts, 1);
  // The queued job was not started by the draining server.
  store::Job queued = StoredJob(data, waiting["id"]);
  EXPECT_EQ(queued.status, store::JobStatus::kQueued);
  EXPECT_EQ(queued.attempts, 0);
}

TEST(ServerDrain, AJobThatOutlivesTheDrainTimeoutIsQueuedAgainAndSucceedsOnTheNextStart) {
  TempDir dir;
  std::string data = dir.path() + "/data";
  std::string block = dir.path() + "/release";
  std::string pidfile = dir.path() + "/generator.pid";
  std::string id;
  {
    ServerProcess server(
        {data, {"--drain-timeout-s", "1"}, {{"FAKE_GENERATE_BLOCK_FILE", block}, {"FAKE_GENERATE_PIDFILE", pidfile}}});
    ASSERT_TRUE(server.started());
    auto client = server.Client();
    id = PostGenerate(*client, "outlives the drain")["id"];
    ASSERT_EQ(WaitReportedProgress(*client, id)["status"], "running");
    int pid = std::atoi(ReadWholeFile(pidfile).c_str());
    ASSERT_GT(pid, 0);

    server.SendSignal(SIGTERM);
    ExpectCleanExit(server.WaitExit(60s), server);
    std::string log = server.stderr_text();
    EXPECT_NE(log.find("event=server_drained handed_back=1"), std::string::npos) << log;
    // Handed back: its process group killed, the job queued with its attempt refunded.
    EXPECT_TRUE(WaitProcessGone(pid, 10s)) << "the generator outlived the drain";
    store::Job stored = StoredJob(data, id);
    EXPECT_EQ(stored.status, store::JobStatus::kQueued);
    EXPECT_EQ(stored.attempts, 0);
  }
  std::ofstream(block) << "go";
  ServerProcess restarted({data, {}, {{"FAKE_GENERATE_BLOCK_FILE", block}}});
  ASSERT_TRUE(restarted.started());
  auto client = restarted.Client();
  json done = WaitFinished(*client, id);
  EXPECT_EQ(done["status"], "success") << done.dump();
  EXPECT_EQ(done["attempts"], 1);
}

TEST(ServerDrain, ASecondSignalDuringTheDrainStopsAtOnce) {
  TempDir dir;
  std::string data = dir.path() + "/data";
  std::string block = dir.path() + "/never";
  ServerProcess server({data, {"--drain-timeout-s", "600"}, {{"FAKE_GENERATE_BLOCK_FILE", block}}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  std::string id = PostGenerate(*client, "interrupted")["id"];
  ASSERT_EQ(WaitReportedProgress(*client, id)["status"], "running");

  server.SendSignal(SIGTERM);
  ASSERT_TRUE(server.WaitForLog("event=server_draining", 10s)) << server.stderr_text();
  server.SendSignal(SIGINT);
  // Far less than the 600 s the drain would have waited.
  ExpectCleanExit(server.WaitExit(30s), server);
  std::string log = server.stderr_text();
  EXPECT_NE(log.find("stop now"), std::string::npos) << log;
  EXPECT_NE(log.find("event=server_drain_interrupted"), std::string::npos) << log;
  store::Job stored = StoredJob(data, id);
  EXPECT_EQ(stored.status, store::JobStatus::kQueued);
  EXPECT_EQ(stored.attempts, 0);
}

TEST(ServerDrain, WithNothingRunningSigtermExitsAtOnce) {
  TempDir dir;
  ServerProcess server({dir.path() + "/data", {"--drain-timeout-s", "600"}, {}});
  ASSERT_TRUE(server.started());
  server.SendSignal(SIGTERM);
  ExpectCleanExit(server.WaitExit(30s), server);
  EXPECT_NE(server.stderr_text().find("event=server_drained handed_back=0"), std::string::npos);
}

}  // namespace
}  // namespace tessera::test
