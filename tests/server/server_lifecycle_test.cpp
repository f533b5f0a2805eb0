// The scheduler as a user sees it through a real server: lanes and placement,
// FIFO, ETA from history, cancel, crash recovery, a dying upscale worker.
#include <gtest/gtest.h>
#include <signal.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "jobs/job_state.h"
#include "store/sqlite_job_store.h"
#include "../support/job_events.h"
#include "../support/raw_http.h"
#include "../support/process_wait.h"
#include "../support/server_process.h"
#include "../support/test_images.h"

namespace tessera::test {
namespace {

using nlohmann::json;

json PostGenerate(httplib::Client& client, const std::string& prompt, const std::string& size = "1280x720") {
  auto response = client.Post("/generate", json{{"prompt", prompt}, {"size", size}}.dump(), "application/json");
  EXPECT_TRUE(response);
  if (!response) return json();
  EXPECT_EQ(response->status, 202) << response->body;
  return json::parse(response->body);
}

json GetStatus(httplib::Client& client, const std::string& id) {
  auto response = client.Get(("/status/" + id).c_str());
  EXPECT_TRUE(response);
  if (!response) return json();
  EXPECT_EQ(response->status, 200) << response->body;
  return json::parse(response->body);
}

void Touch(const std::string& path) { std::ofstream(path) << "go"; }

int ReadPid(const std::string& path) { return std::atoi(ReadWholeFile(path).c_str()); }

bool ProcessExists(int pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

int64_t ParseIsoMs(const json& value) {
  // "2026-11-23T14:32:07.346Z" -> ms since epoch (UTC).
  std::string text = value.get<std::string>();
  std::tm tm{};
  strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  return static_cast<int64_t>(timegm(&tm)) * 1000 + std::atoi(text.c_str() + 20);
}

TEST(ServerLifecycle, TwoLanesPlaceByLeastBacklogAndRunEachLaneInOrder) {
  TempDir dir;
  std::string block = dir.path() + "/release";
  ServerProcess server({dir.path() + "/data", {}, {{"GPU_IDS", "0,1"}, {"FAKE_GENERATE_BLOCK_FILE", block}}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();

  json first = PostGenerate(*client, "one");
  json second = PostGenerate(*client, "two");
  json third = PostGenerate(*client, "three");
  json fourth = PostGenerate(*client, "four");
  // Empty lanes first, then the least backlog with ties to the lowest GPU.
  EXPECT_EQ(first["gpu_assigned"], 0);
  EXPECT_EQ(second["gpu_assigned"], 1);
  EXPECT_EQ(third["gpu_assigned"], 0);
  EXPECT_EQ(fourth["gpu_assigned"], 1);
  EXPECT_EQ(third["queue_position"], 2);  // behind "one" on GPU 0
  EXPECT_EQ(fourth["queue_position"], 2);
  EXPECT_TRUE(std::regex_match(first["filename"].get<std::string>(),
                               std::regex(R"(result_gpu0_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_[0-9a-f]{8}\.mp4)")));

  json running = WaitRunning(*client, first["id"]);
  EXPECT_EQ(running["status"], "running");
  EXPECT_EQ(GetStatus(*client, third["id"])["status"], "queued");
  Touch(block);
  std::vector<json> done;
  for (const json* job : {&first, &second, &third, &fourth}) done.push_back(WaitFinished(*client, (*job)["id"]));
  for (const json& job : done) ASSERT_EQ(job["status"], "success") << job.dump();
  // FIFO per lane: "three" started only after "one" finished on GPU 0, and so on.
  EXPECT_GE(ParseIsoMs(done[2]["started_at"]), ParseIsoMs(done[0]["finished_at"]));
  EXPECT_GE(ParseIsoMs(done[3]["started_at"]), ParseIsoMs(done[1]["finished_at"]));
  // Each generator saw only its lane's GPU.
  std::string data = server.data_dir();
  EXPECT_NE(ReadWholeFile(data + "/logs/" + first["id"].get<std::string>() + ".log").find("CUDA_VISIBLE_DEVICES=0"),
            std::string::npos);
  EXPECT_NE(ReadWholeFile(data + "/logs/" + second["id"].get<std::string>() + ".log").find("CUDA_VISIBLE_DEVICES=1"),
            std::string::npos);
}

TEST(ServerLifecycle, EtaFollowsTheSeedFormulasFromStoredHistory) {
  TempDir dir;
  std::string data = dir.path() + "/data";
  {
    // History on lane cpu:0: generate jobs of 100 s and 200 s (average 150 s).
    std::filesystem::create_directories(data);
    auto store = store::SqliteJobStore::Open(data + "/state.db");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    int64_t now = jobs::NowMs();
    int n = 0;
    for (int seconds : {100, 200}) {
      store::Job job;
      job.id = "00000000-0000-4000-8000-00000000000" + std::to_string(++n);
      job.kind = store::JobKind::kGenerate;
      job.status = store::JobStatus::kSuccess;
      job.prompt = "history";
      job.lane = "cpu:0";
      job.created_ms = now - 1000000;
      job.started_ms = now - 900000 + n * 1000;
      job.finished_ms = job.started_ms + seconds * 1000;
      ASSERT_TRUE((*store)->Insert(job).ok());
    }
  }
  std::string block = dir.path() + "/release";
  ServerProcess server({data, {}, {{"FAKE_GENERATE_BLOCK_FILE", block}, {"FAKE_GENERATE_STEPS", "4"}}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();

  json running = PostGenerate(*client, "runs first");
  WaitRunning(*client, running["id"]);
  json queued = PostGenerate(*client, "waits");
  json queued_again = PostGenerate(*client, "waits longer");
  // Tier C: avg x (jobs_ahead + 1) x 1.05 = 150 x 2 x 1.05 and 150 x 3 x 1.05.
  EXPECT_EQ(queued["queue_position"], 2);
  EXPECT_EQ(queued["eta_seconds"], 315);
  EXPECT_EQ(queued["eta_source"], "moving_average");
  EXPECT_EQ(queued_again["eta_seconds"], 473);  // 472.5 rounded
  // The running job reported step 1/4 before blocking: tier B from its progress.
  WaitReportedProgress(*client, running["id"]);
  json status = GetStatus(*client, running["id"]);
  EXPECT_EQ(status["eta_source"], "heuristic");
  EXPECT_DOUBLE_EQ(status["progress"].get<double>(), 0.25);
  Touch(block);
  for (const json* job : {&running, &queued, &queued_again}) EXPECT_EQ(WaitFinished(*client, (*job)["id"])["status"], "success");
}

TEST(ServerLifecycle, CancelingARunningJobKillsItsProcessAndFreesTheLane) {
  TempDir dir;
  std::string block = dir.path() + "/never";
  std::string pidfile = dir.path() + "/generator.pid";
  ServerProcess server({dir.path() + "/data", {}, {{"FAKE_GENERATE_BLOCK_FILE", block}, {"FAKE_GENERATE_PIDFILE", pidfile}}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();

  json job = PostGenerate(*client, "to be canceled");
  json next = PostGenerate(*client, "next in line");
  ASSERT_EQ(WaitReportedProgress(*client, job["id"])["status"], "running");
  int pid = ReadPid(pidfile);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(ProcessExists(pid));

  auto response = client->Delete(("/jobs?ids=" + job["id"].get<std::string>()).c_str());
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200) << response->body;
  EXPECT_EQ(json::parse(response->body)["canceled"], json::array({job["id"]}));
  json after = GetStatus(*client, job["id"]);
  EXPECT_EQ(after["status"], "canceled");
  EXPECT_FALSE(ProcessExists(pid)) << "the generator survived its cancel";
  // The lane moved on to the next job.
  json moved_on = WaitRunning(*client, next["id"]);
  EXPECT_EQ(moved_on["status"], "running") << moved_on.dump();
  ASSERT_TRUE(client->Delete(("/jobs?ids=" + next["id"].get<std::string>()).c_str()));
}

TEST(ServerLifecycle, AJobSurvivesKillDashNineOfTheServer) {
  TempDir dir;
  std::string data = dir.path() + "/data";
  std::string block = dir.path() + "/never";
  std::string pidfile = dir.path() + "/generator.pid";
  std::string id;
  {
    ServerProcess server({data, {}, {{"FAKE_GENERATE_BLOCK_FILE", block}, {"FAKE_GENERATE_PIDFILE", pidfile}}});
    ASSERT_TRUE(server.started());
    auto client = server.Client();
    json job = PostGenerate(*client, "survives a crash");
    id = job["id"];
    ASSERT_EQ(WaitReportedProgress(*client, id)["status"], "running");
    int pid = ReadPid(pidfile);
    ASSERT_GT(pid, 0);
    server.Kill();
    // Its generator dies with it rather than running on, unseen, holding a GPU.
    EXPECT_TRUE(WaitProcessGone(pid, std::chrono::seconds(10))) << "the generator outlived the server";
  }
  ServerProcess restarted({data, {}, {}});
  ASSERT_TRUE(restarted.started());
  auto client = restarted.Client();
  json done = WaitFinished(*client, id);
  EXPECT_EQ(done["status"], "success") << done.dump();
  EXPECT_EQ(done["attempts"], 2);
  EXPECT_NE(restarted.stderr_text().find("job_recovered"), std::string::npos);
}

TEST(ServerLifecycle, AnUpscaleWorkerKilledMidJobIsReplacedAndTheJobSucceeds) {
  TempDir dir;
  ServerProcess server({dir.path() + "/data", {"--worker-threads", "2"}, {}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();

  // A first quick job starts the lane's worker; its pid is in the server log.
  std::vector<uint8_t> small = GradientPng(16, 16, 3, 8);
  auto warm = client->Post("/upscale?wait=true&model=lanczos&scale=2",
                           std::string(small.begin(), small.end()), "image/png");
  ASSERT_TRUE(warm);
  ASSERT_EQ(warm->status, 200) << warm->body;
  std::smatch match;
  std::string log = server.stderr_text();
  ASSERT_TRUE(std::regex_search(log, match, std::regex(R"(event=upscale_worker_started .*pid=(\d+))")));
  int worker_pid = std::stoi(match[1]);

  // A slow job (a model upscale of a larger image), and the worker dies under it.
  std::vector<uint8_t> large = GradientPng(320, 320, 3, 8);
  auto submitted = client->Post("/upscale?model=realesr-animevideov3-x2",
                                std::string(large.begin(), large.end()), "image/png");
  ASSERT_TRUE(submitted);
  ASSERT_EQ(submitted->status, 202) << submitted->body;
  std::string id = json::parse(submitted->body)["id"];
  ASSERT_EQ(WaitRunning(*client, id)["status"], "running");
  ASSERT_EQ(::kill(worker_pid, SIGKILL), 0);

  json done = WaitFinished(*client, id);
  EXPECT_EQ(done["status"], "success") << done.dump();
  EXPECT_EQ(done["attempts"], 2);
  auto result = client->Get(("/files/" + done["filename"].get<std::string>()).c_str());
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200);
  auto image = DecodePixels(std::vector<uint8_t>(result->body.begin(), result->body.end()));
  EXPECT_EQ(image.width, 640);
  EXPECT_EQ(image.height, 640);
  EXPECT_NE(server.stderr_text().find("upscale_worker_lost"), std::string::npos);
  // The replacement worker loaded the model once: its cache shows in /metrics.
  auto metrics = client->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("tessera_model_cache_loads_total{lane=\"cpu:0\"} 1\n"), std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("tessera_model_cache_entries{lane=\"cpu:0\"} 1\n"), std::string::npos);
}

TEST(ServerLifecycle, AHungUpscaleWorkerIsKilledAndTheJobFailsAfterItsAttemptsWithTheReason) {
  TempDir dir;
  std::string hanging = std::string(TESSERA_SOURCE_DIR) + "/tests/fixtures/hanging_worker.sh";
  ServerProcess server({dir.path() + "/data",
                        {"--worker-binary", hanging, "--upscale-timeout-s", "1", "--max-attempts", "2"}, {}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  std::vector<uint8_t> png = GradientPng(8, 8, 3, 8);
  auto response = client->Post("/upscale?wait=true&model=lanczos&scale=2", std::string(png.begin(), png.end()),
                               "image/png");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 422) << response->body;
  json job = json::parse(response->body);
  EXPECT_EQ(job["status"], "error");
  EXPECT_EQ(job["attempts"], 2);
  EXPECT_NE(job["error"].get<std::string>().find("did not answer within 1000 ms"), std::string::npos) << job.dump();
  // The lane is free again: a later job is taken (and meets the same worker).
  EXPECT_EQ(WaitRunning(*client, PostGenerate(*client, "after the hang")["id"])["status"], "running");
}

// SIGTERM while a POST /upscale?wait=true waits for a job that never ends (its
// worker hangs) and GET /events streams are open: the server stops cleanly (exit
// status 0; under AddressSanitizer a use-after-free on this path made it exit 1),
// closes both connections, and the job is still there for the next start.
TEST(ServerLifecycle, StopsCleanlyWhileAWaitingUploadAndEventStreamsAreOpen) {
  TempDir dir;
  std::string hanging = std::string(TESSERA_SOURCE_DIR) + "/tests/fixtures/hanging_worker.sh";
  // No drain: SIGTERM hands the hanging job back at once (server_drain_test.cpp
  // covers the drain itself).
  std::vector<std::string> args = {"--worker-binary", hanging, "--upscale-timeout-s", "600", "--drain-timeout-s", "0"};
  auto server = std::make_unique<ServerProcess>(ServerOptions{dir.path() + "/data", args, {}});
  ASSERT_TRUE(server->started());

  RawConnection everything(server->port());
  ASSERT_TRUE(everything.Send("GET /events HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(everything.ReadUntil("\r\n\r\n", std::chrono::seconds(5))) << everything.received();
  std::vector<uint8_t> png = GradientPng(8, 8, 3, 8);
  RawConnection waiting(server->port());
  ASSERT_TRUE(waiting.Send("POST /upscale?wait=true&model=lanczos&scale=2 HTTP/1.1\r\nHost: t\r\n"
                           "Content-Type: image/png\r\nContent-Length: " + std::to_string(png.size()) + "\r\n\r\n" +
                           std::string(png.begin(), png.end())));
  // The job runs (and hangs): the upload was accepted and its request waits.
  ASSERT_TRUE(everything.ReadUntil("\"status\":\"running\"", std::chrono::seconds(30))) << everything.received();
  std::smatch id;
  ASSERT_TRUE(std::regex_search(everything.received(), id, std::regex("\"id\":\"([0-9a-f-]+)\"")));
  std::string job_id = id[1];
  RawConnection one_job(server->port());
  ASSERT_TRUE(one_job.Send("GET /events?job_id=" + job_id + " HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(one_job.ReadUntil("\"status\":\"running\"", std::chrono::seconds(5))) << one_job.received();

  int status = server->Terminate();
  EXPECT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << server->stderr_text();
  std::string log = server->stderr_text();
  EXPECT_EQ(log.find("AddressSanitizer"), std::string::npos) << log;
  EXPECT_NE(log.find("event=server_stopped"), std::string::npos) << log;
  EXPECT_TRUE(waiting.WaitClosedByPeer(std::chrono::seconds(5)));
  EXPECT_TRUE(everything.WaitClosedByPeer(std::chrono::seconds(5)));
  EXPECT_TRUE(one_job.WaitClosedByPeer(std::chrono::seconds(5)));

  // Nothing lost: the interrupted job is queued again for the next start.
  server = std::make_unique<ServerProcess>(ServerOptions{dir.path() + "/data", args, {}});
  ASSERT_TRUE(server->started());
  auto client = server->Client();
  json job = GetStatus(*client, job_id);
  EXPECT_TRUE(job["status"] == "queued" || job["status"] == "running") << job.dump();
}

TEST(ServerLifecycle, ACorruptImageFailsItsJobClearlyAndTheWorkerServesTheNextOne) {
  TempDir dir;
  ServerProcess server({dir.path() + "/data", {}, {}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  std::vector<uint8_t> png = GradientPng(24, 16, 3, 8);
  // A PNG whose header is broken (a merely truncated file can decode partially).
  std::string corrupt = std::string(png.begin(), png.begin() + 16) + std::string(48, '\x5a');
  auto bad = client->Post("/upscale?wait=true&model=lanczos&scale=2", corrupt, "image/png");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 422) << bad->body;
  json failed = json::parse(bad->body);
  EXPECT_EQ(failed["attempts"], 1);  // the image is at fault, not the worker: no retry
  EXPECT_NE(failed["error"].get<std::string>().find("BAD_IMAGE"), std::string::npos) << failed.dump();

  auto good = client->Post("/upscale?wait=true&model=lanczos&scale=2", std::string(png.begin(), png.end()), "image/png");
  ASSERT_TRUE(good);
  ASSERT_EQ(good->status, 200) << good->body;
  auto image = DecodePixels(std::vector<uint8_t>(good->body.begin(), good->body.end()));
  EXPECT_EQ(image.width, 48);
  EXPECT_EQ(image.height, 32);
}

TEST(ServerLifecycle, RetentionDeletesOldFinishedJobsWithTheirFilesAtStart) {
  TempDir dir;
  std::string data = dir.path() + "/data";
  std::filesystem::create_directories(data + "/results");
  int64_t now = jobs::NowMs();
  {
    auto store = store::SqliteJobStore::Open(data + "/state.db");
    ASSERT_TRUE(store.ok());
    auto add = [&](const std::string& id, const std::string& file, int64_t finished_ms, store::JobStatus status) {
      store::Job job;
      job.id = id;
      job.kind = store::JobKind::kGenerate;
      job.status = status;
      job.prompt = "old";
      job.filename = file;
      job.lane = "cpu:0";
      job.created_ms = finished_ms - 1000;
      job.started_ms = finished_ms - 500;
      job.finished_ms = finished_ms;
      ASSERT_TRUE((*store)->Insert(job).ok());
      std::ofstream(data + "/results/" + file) << "video";
    };
    add("00000000-0000-4000-8000-000000000001", "old.mp4", now - 3 * 86400000ll, store::JobStatus::kSuccess);
    add("00000000-0000-4000-8000-000000000002", "recent.mp4", now - 3600000ll, store::JobStatus::kSuccess);
  }
  ServerProcess server({data, {"--retention-days", "2"}, {}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  auto old_job = client->Get("/status/00000000-0000-4000-8000-000000000001");
  ASSERT_TRUE(old_job);
  EXPECT_EQ(old_job->status, 404);
  EXPECT_FALSE(std::filesystem::exists(data + "/results/old.mp4"));
  EXPECT_EQ(GetStatus(*client, "00000000-0000-4000-8000-000000000002")["status"], "success");
  EXPECT_TRUE(std::filesystem::exists(data + "/results/recent.mp4"));
}

}  // namespace
}  // namespace tessera::test
