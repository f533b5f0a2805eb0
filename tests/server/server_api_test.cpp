// The job server's REST API as a client meets it: a real `tessera serve` on
// loopback (tests/support/server_process.h) running the test-only fake generator
// (tests/fixtures/fake_generate.py). One behaviour per test, seed 001's routes.
//
// Nothing here sleeps to synchronise: a test waits for a job through
// GET /events?job_id= (the stream ends once the job finished), holds a job in
// `running` with FAKE_GENERATE_BLOCK_FILE, and waits for webhook deliveries on a
// condition variable.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../support/server_process.h"
#include "util/sha256.h"
#include "util/subprocess.h"

namespace tessera::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Percent-encodes everything but RFC 3986's unreserved characters.
std::string UrlEncode(const std::string& text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// An answer from the server: status, headers, raw body and the body as JSON
// (discarded when it is not JSON).
struct Reply {
  int status = 0;
  httplib::Headers headers;
  std::string body;
  json data;

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

Reply ToReply(const httplib::Result& result) {
  Reply reply;
  if (!result) {
    ADD_FAILURE() << "HTTP request failed: " << httplib::to_string(result.error());
    return reply;
  }
  reply.status = result->status;
  reply.headers = result->headers;
  reply.body = result->body;
  reply.data = json::parse(result->body, nullptr, false);
  return reply;
}

// Runs `command` with popen and returns its standard output.
std::string CommandOutput(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  ::pclose(pipe);
  return out;
}

// "1280x720": the first video stream's size, as ffprobe reads the file.
std::string VideoSize(const std::string& path) {
  std::string out = CommandOutput(
      "ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=s=x:p=0 '" + path + "'");
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

// The brightest luma byte of the first frame within `crop` (an ffmpeg crop filter
// argument, w:h:x:y); -1 when ffmpeg gave nothing. Pad bands are black (0).
int BrightestIn(const std::string& path, const std::string& crop) {
  std::string pixels = CommandOutput("ffmpeg -nostdin -v error -i '" + path + "' -frames:v 1 -vf crop=" + crop +
                                     " -f rawvideo -pix_fmt gray -");
  if (pixels.empty()) return -1;
  int brightest = 0;
  for (unsigned char c : pixels) brightest = std::max(brightest, static_cast<int>(c));
  return brightest;
}

bool IsFinal(const json& job) {
  std::string status = job.value("status", "");
  return status == "success" || status == "error" || status == "canceled";
}

// A test HTTP server on 127.0.0.1 that records every POST and lets the test wait
// for a number of them.
class WebhookReceiver {
 public:
  struct Delivery {
    std::string path;
    std::string body;
    httplib::Headers headers;
  };

  WebhookReceiver() {
    http_.Post(R"(/.*)", [this](const httplib::Request& request, httplib::Response& response) {
      {
        std::lock_guard lock(mutex_);
        deliveries_.push_back({request.path, request.body, request.headers});
      }
      arrived_.notify_all();
      response.set_content("{}", "application/json");
    });
    port_ = http_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { http_.listen_after_bind(); });
  }
  ~WebhookReceiver() {
    http_.stop();
    thread_.join();
  }

  std::string Url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

  // Blocks until `count` deliveries arrived (or `limit` passed: a failure, not a pace).
  std::vector<Delivery> WaitFor(size_t count, std::chrono::seconds limit = std::chrono::seconds(60)) {
    std::unique_lock lock(mutex_);
    arrived_.wait_for(lock, limit, [&] { return deliveries_.size() >= count; });
    return deliveries_;
  }

 private:
  httplib::Server http_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<Delivery> deliveries_;
};

class ServerApiTest : public ::testing::Test {
 protected:
  std::string data_dir() const { return dir_.path() + "/data"; }
  std::string ResultPath(const std::string& name) const { return data_dir() + "/results/" + name; }
  std::string LogPath(const std::string& id) const { return data_dir() + "/logs/" + id + ".log"; }
  std::string BlockFile() const { return dir_.path() + "/release"; }

  // Starts the server; use as ASSERT_NO_FATAL_FAILURE(StartServer(...)).
  void StartServer(std::vector<std::string> args = {}, std::map<std::string, std::string> env = {}) {
    ServerOptions options;
    options.data_dir = data_dir();
    options.args = std::move(args);
    options.env = std::move(env);
    server_ = std::make_unique<ServerProcess>(std::move(options));
    ASSERT_TRUE(server_->started()) << server_->stderr_text();
  }
  // A server whose generate jobs wait after their first step until Release().
  void StartBlockingServer(std::vector<std::string> args = {}) {
    StartServer(std::move(args), {{"FAKE_GENERATE_BLOCK_FILE", BlockFile()}});
  }
  void Release() { std::ofstream(BlockFile()) << "go"; }

  std::unique_ptr<httplib::Client> Client() const {
    auto client = server_->Client();
    if (!token_.empty()) client->set_bearer_token_auth(token_.c_str());
    return client;
  }

  Reply Get(const std::string& path, const httplib::Headers& headers = {}) {
    return ToReply(Client()->Get(path.c_str(), headers));
  }
  Reply Delete(const std::string& path) { return ToReply(Client()->Delete(path.c_str())); }
  Reply Post(const std::string& path, const std::string& body, const std::string& type = "application/json") {
    return ToReply(Client()->Post(path.c_str(), body, type.c_str()));
  }

  // POST /generate that must be accepted; the 202 body.
  json Submit(const json& body) {
    Reply reply = Post("/generate", body.dump());
    EXPECT_EQ(reply.status, 202) << reply.body;
    return reply.data;
  }
  json SubmitPrompt(const std::string& prompt, const std::string& size = "1280x720") {
    return Submit(json{{"prompt", prompt}, {"size", size}});
  }

  // Follows GET /events?job_id= and returns the events seen: all of them until
  // the stream ends (the job finished), or up to the first with `until_status`.
  std::vector<json> FollowEvents(const std::string& id, const std::string& until_status = "") {
    std::vector<json> events;
    std::string pending;
    bool stopped_early = false;
    auto result = Client()->Get(("/events?job_id=" + id).c_str(), [&](const char* data, size_t length) {
      pending.append(data, length);
      for (size_t end; (end = pending.find("\n\n")) != std::string::npos;) {
        std::string frame = pending.substr(0, end);
        pending.erase(0, end + 2);
        std::istringstream lines(frame);
        for (std::string line; std::getline(lines, line);) {
          if (line.rfind("data: ", 0) != 0) continue;
          events.push_back(json::parse(line.substr(6), nullptr, false));
          if (!until_status.empty() && events.back().value("status", "") == until_status) {
            stopped_early = true;
            return false;
          }
        }
      }
      return true;
    });
    if (!stopped_early) {
      EXPECT_TRUE(result) << "GET /events: " << httplib::to_string(result.error());
      if (result) {
        EXPECT_EQ(result->status, 200) << result->body;
      }
    }
    if (!until_status.empty()) {
      EXPECT_TRUE(stopped_early) << "job " << id << " never reached " << until_status;
    }
    return events;
  }

  // Waits for the job to finish (its event stream ends) and returns GET /status.
  json WaitFinished(const std::string& id) {
    std::vector<json> events = FollowEvents(id);
    EXPECT_FALSE(events.empty());
    if (!events.empty()) {
      EXPECT_TRUE(IsFinal(events.back())) << events.back().dump();
    }
    Reply status = Get("/status/" + id);
    EXPECT_EQ(status.status, 200) << status.body;
    return status.data;
  }

  // The value of a Prometheus sample line `name` (with its labels), -1 if absent.
  double MetricValue(const std::string& text, const std::string& sample) {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      if (line.size() > sample.size() && line.compare(0, sample.size(), sample) == 0 && line[sample.size()] == ' ') {
        return std::stod(line.substr(sample.size() + 1));
      }
    }
    return -1;
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::string token_;
};

// --- 1. the whole life of a generate job -----------------------------------

TEST_F(ServerApiTest, GenerateJobLivesThroughEveryRoute) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const std::string prompt = "a red fox crossing a snowy field";
  Reply accepted = Post("/generate", json{{"prompt", prompt}, {"size", "1280x720"}}.dump());
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const json& job = accepted.data;
  const std::string id = job.value("id", "");
  ASSERT_FALSE(id.empty()) << accepted.body;
  EXPECT_TRUE(job.contains("eta_seconds") && job["eta_seconds"].is_number()) << accepted.body;
  EXPECT_TRUE(job.contains("gpu_assigned") && job["gpu_assigned"].is_null()) << accepted.body;
  EXPECT_EQ(accepted.Header("Location"), "/status/" + id);
  const std::string filename = job.value("filename", "");
  ASSERT_TRUE(
      std::regex_match(filename, std::regex(R"(result_cpu0_\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}_[0-9a-f]{8}\.mp4)")))
      << filename;
  EXPECT_EQ(filename.substr(filename.size() - 12, 8), id.substr(0, 8)) << filename;
  // Whether the answer says "queued" is AcknowledgementSaysQueuedOnAnIdleLane's business.
  EXPECT_TRUE(job["status"] == "queued" || job["status"] == "running") << accepted.body;

  std::vector<json> events = FollowEvents(id);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().value("status", ""), "success") << events.back().dump();
  bool saw_running = false;
  for (const json& event : events) saw_running = saw_running || event.value("status", "") == "running";
  EXPECT_TRUE(saw_running) << "no running event among " << events.size();

  Reply status = Get("/status/" + id);
  ASSERT_EQ(status.status, 200) << status.body;
  EXPECT_EQ(status.data.value("status", ""), "success");
  EXPECT_DOUBLE_EQ(status.data.value("progress", 0.0), 1.0);
  EXPECT_EQ(status.data.value("file_url", ""), "/files/" + filename);
  EXPECT_EQ(status.data.value("filename", ""), filename);
  EXPECT_TRUE(status.data["error"].is_null()) << status.body;

  // The file, with its cache headers.
  const std::string on_disk = ReadWholeFile(ResultPath(filename));
  ASSERT_GT(on_disk.size(), 100u);
  Reply file = Get("/files/" + filename);
  ASSERT_EQ(file.status, 200);
  EXPECT_EQ(file.Header("Content-Type"), "video/mp4");
  EXPECT_EQ(file.Header("Content-Length"), std::to_string(on_disk.size()));
  EXPECT_TRUE(file.body == on_disk) << "served bytes differ from the file";
  const std::string etag = file.Header("ETag");
  EXPECT_FALSE(etag.empty());
  EXPECT_FALSE(file.Header("Last-Modified").empty());
  EXPECT_NE(file.Header("Cache-Control").find("max-age"), std::string::npos) << file.Header("Cache-Control");

  Reply range = Get("/files/" + filename, {{"Range", "bytes=0-99"}});
  EXPECT_EQ(range.status, 206);
  ASSERT_EQ(range.body.size(), 100u);
  EXPECT_TRUE(range.body == on_disk.substr(0, 100));
  EXPECT_EQ(range.Header("Content-Range"), "bytes 0-99/" + std::to_string(on_disk.size()));

  Reply cached = Get("/files/" + filename, {{"If-None-Match", etag}});
  EXPECT_EQ(cached.status, 304);
  EXPECT_TRUE(cached.body.empty());

  // Listings and lookups.
  Reply videos = Get("/videos");
  ASSERT_EQ(videos.status, 200) << videos.body;
  bool listed = false;
  for (const json& video : videos.data["videos"]) {
    if (video.value("filename", "") == filename) {
      listed = true;
      EXPECT_EQ(video.value("job_id", ""), id);
      EXPECT_EQ(video.value("size_bytes", int64_t{0}), static_cast<int64_t>(on_disk.size()));
    }
  }
  EXPECT_TRUE(listed) << videos.body;

  Reply latest = Get("/jobs/lookup?prompt=" + UrlEncode(prompt));
  ASSERT_EQ(latest.status, 200) << latest.body;
  EXPECT_EQ(latest.data.value("id", ""), id);
  Reply all = Get("/jobs/lookup?all=true&prompt=" + UrlEncode(prompt));
  ASSERT_EQ(all.status, 200) << all.body;
  ASSERT_EQ(all.data["jobs"].size(), 1u) << all.body;
  EXPECT_EQ(all.data["jobs"][0].value("id", ""), id);
  EXPECT_EQ(Get("/jobs/lookup?prompt=" + UrlEncode("never asked for")).status, 404);

  // The model ran at 704, the API answers 720; the job log holds the generator's output.
  EXPECT_EQ(VideoSize(ResultPath(filename)), "1280x720");
  std::string log = ReadWholeFile(LogPath(id));
  EXPECT_NE(log.find("received prompt: " + prompt), std::string::npos) << log;
  EXPECT_NE(log.find("size=1280x704"), std::string::npos) << log;
  EXPECT_NE(log.find("Finished."), std::string::npos) << log;
}

// Seed 001 section 6: the 202 acknowledges a queued job with its queue_position,
// even when an idle lane takes it at once. (Scheduler::Submit wakes the lanes
// before it describes the job, so the answer races the lane thread.)
TEST_F(ServerApiTest, AcknowledgementSaysQueuedOnAnIdleLane) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  for (int i = 0; i < 3; ++i) {
    Reply accepted = Post("/generate", json{{"prompt", "idle lane " + std::to_string(i)}, {"size", "1280x720"}}.dump());
    ASSERT_EQ(accepted.status, 202) << accepted.body;
    EXPECT_EQ(accepted.data["status"], "queued") << "submission " << i << ": " << accepted.body;
    EXPECT_EQ(accepted.data["queue_position"], 1) << "submission " << i << ": " << accepted.body;
    EXPECT_EQ(WaitFinished(accepted.data.value("id", "")).value("status", ""), "success");
  }
}

TEST_F(ServerApiTest, SecondJobIsQueuedBehindTheRunningOne) {
  ASSERT_NO_FATAL_FAILURE(StartBlockingServer());
  json first = SubmitPrompt("first");
  FollowEvents(first.value("id", ""), "running");
  Reply second = Post("/generate", json{{"prompt", "second"}, {"size", "1280x720"}}.dump());
  ASSERT_EQ(second.status, 202) << second.body;
  EXPECT_EQ(second.data.value("status", ""), "queued");
  EXPECT_EQ(second.data.value("queue_position", -1), 2);
  EXPECT_GT(second.data.value("eta_seconds", 0), 0);
  EXPECT_TRUE(second.data["gpu_assigned"].is_null());
  Reply status = Get("/status/" + second.data.value("id", ""));
  EXPECT_EQ(status.data.value("status", ""), "queued");
  Release();
  EXPECT_EQ(WaitFinished(first.value("id", "")).value("status", ""), "success");
  EXPECT_EQ(WaitFinished(second.data.value("id", "")).value("status", ""), "success");
}

TEST_F(ServerApiTest, PadAndScaleGive720) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  json landscape = SubmitPrompt("landscape pad");
  json portrait = SubmitPrompt("portrait pad", "720x1280");
  json scaled = Submit(json{{"prompt", "landscape scale"}, {"size", "1280x720"}, {"resize_mode", "scale"}});
  for (const json* job : {&landscape, &portrait, &scaled}) {
    EXPECT_EQ(WaitFinished(job->value("id", "")).value("status", ""), "success") << job->dump();
  }
  std::string pad_path = ResultPath(landscape.value("filename", ""));
  std::string portrait_path = ResultPath(portrait.value("filename", ""));
  std::string scale_path = ResultPath(scaled.value("filename", ""));
  EXPECT_EQ(VideoSize(pad_path), "1280x720");
  EXPECT_EQ(VideoSize(portrait_path), "720x1280");
  EXPECT_EQ(VideoSize(scale_path), "1280x720");
  // Pad adds 8 black rows (columns in portrait); scale stretches the picture instead.
  EXPECT_LE(BrightestIn(pad_path, "1280:6:0:0"), 16);
  EXPECT_LE(BrightestIn(portrait_path, "6:1280:0:0"), 16);
  EXPECT_GT(BrightestIn(scale_path, "1280:6:0:0"), 64);
  std::string portrait_log = ReadWholeFile(LogPath(portrait.value("id", "")));
  EXPECT_NE(portrait_log.find("size=704x1280"), std::string::npos) << portrait_log;
}

// --- 2. the prompt reaches the generator as one argument, untouched ---------

TEST_F(ServerApiTest, HostilePromptReachesTheGeneratorVerbatim) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const std::string marker = dir_.path() + "/injected";
  const std::string prompt = "she said \"hi\" and 'bye'; rm -rf / ; $(touch " + marker + ") `touch " + marker +
                             "2` | cat && echo $HOME\nsecond line\twith a tab";
  json job = SubmitPrompt(prompt);
  json finished = WaitFinished(job.value("id", ""));
  EXPECT_EQ(finished.value("status", ""), "success") << finished.dump();
  EXPECT_EQ(finished.value("prompt", ""), prompt);
  std::string log = ReadWholeFile(LogPath(job.value("id", "")));
  EXPECT_NE(log.find("received prompt: " + prompt), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(marker));
  EXPECT_FALSE(fs::exists(marker + "2"));
  Reply found = Get("/jobs/lookup?prompt=" + UrlEncode(prompt));
  EXPECT_EQ(found.status, 200) << found.body;
  EXPECT_EQ(found.data.value("id", ""), job.value("id", ""));
}

// --- 3. deletes by every selector ------------------------------------------

TEST_F(ServerApiTest, DeleteJobsByIdsKeepsFilesAndReportsUnknownIds) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  json job = SubmitPrompt("to delete by id");
  const std::string id = job.value("id", "");
  ASSERT_EQ(WaitFinished(id).value("status", ""), "success");
  Reply deleted = Delete("/jobs?ids=" + id + ",no-such-job");
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_EQ(deleted.data["deleted"], json::array({id}));
  EXPECT_EQ(deleted.data["not_found"], json::array({"no-such-job"}));
  EXPECT_EQ(deleted.data["canceled"], json::array());
  EXPECT_EQ(deleted.data["files_deleted"], json::array());
  EXPECT_EQ(Get("/status/" + id).status, 404);
  EXPECT_TRUE(fs::exists(ResultPath(job.value("filename", ""))));
}

TEST_F(ServerApiTest, DeleteJobsByStatusWithFiles) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  json a = SubmitPrompt("status a");
  json b = SubmitPrompt("status b");
  ASSERT_EQ(WaitFinished(a.value("id", "")).value("status", ""), "success");
  ASSERT_EQ(WaitFinished(b.value("id", "")).value("status", ""), "success");
  ASSERT_TRUE(fs::exists(ResultPath(a.value("filename", ""))));

  Reply deleted = Delete("/jobs?status=success&delete_files=true");
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_EQ(deleted.data["deleted"].size(), 2u) << deleted.body;
  EXPECT_EQ(deleted.data["files_deleted"].size(), 2u) << deleted.body;
  EXPECT_FALSE(fs::exists(ResultPath(a.value("filename", ""))));
  EXPECT_FALSE(fs::exists(ResultPath(b.value("filename", ""))));
  EXPECT_EQ(Get("/status/" + a.value("id", "")).status, 404);
  EXPECT_EQ(Get("/files/" + a.value("filename", "")).status, 404);
  EXPECT_EQ(Get("/videos").data["videos"], json::array());
}

TEST_F(ServerApiTest, DeleteAllCancelsLiveJobsAndDeletesFinishedOnes) {
  ASSERT_NO_FATAL_FAILURE(StartBlockingServer());
  json done = SubmitPrompt("finished before the purge");
  FollowEvents(done.value("id", ""), "running");
  Release();
  ASSERT_EQ(WaitFinished(done.value("id", "")).value("status", ""), "success");
  fs::remove(BlockFile());  // the next job waits again

  json running = SubmitPrompt("running during the purge");
  FollowEvents(running.value("id", ""), "running");
  json queued = SubmitPrompt("queued during the purge");
  ASSERT_EQ(queued.value("status", ""), "queued");

  Reply purged = Delete("/jobs?all=true&delete_files=true");
  ASSERT_EQ(purged.status, 200) << purged.body;
  std::set<std::string> canceled, deleted;
  for (const json& id : purged.data["canceled"]) canceled.insert(id.get<std::string>());
  for (const json& id : purged.data["deleted"]) deleted.insert(id.get<std::string>());
  EXPECT_EQ(canceled, (std::set<std::string>{running.value("id", ""), queued.value("id", "")})) << purged.body;
  EXPECT_EQ(deleted, (std::set<std::string>{done.value("id", "")})) << purged.body;
  EXPECT_EQ(purged.data["files_deleted"], json::array({done.value("filename", "")})) << purged.body;
  EXPECT_FALSE(fs::exists(ResultPath(done.value("filename", ""))));

  EXPECT_EQ(Get("/status/" + done.value("id", "")).status, 404);
  EXPECT_EQ(Get("/status/" + running.value("id", "")).data.value("status", ""), "canceled");
  EXPECT_EQ(Get("/status/" + queued.value("id", "")).data.value("status", ""), "canceled");
  // The canceled running job never produced its file.
  EXPECT_FALSE(fs::exists(ResultPath(running.value("filename", ""))));
}

TEST_F(ServerApiTest, DeleteJobsNeedsExactlyOneSelector) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  for (std::string query : {"/jobs", "/jobs?delete_files=true", "/jobs?ids=a&all=true", "/jobs?status=success&ids=a",
                            "/jobs?status=bogus", "/jobs?ids=a&delete_files=maybe"}) {
    Reply reply = Delete(query);
    EXPECT_EQ(reply.status, 400) << query << ": " << reply.body;
    EXPECT_TRUE(reply.data.is_object() && reply.data["error"].is_string()) << query << ": " << reply.body;
  }
}

TEST_F(ServerApiTest, DeleteVideosByEverySelector) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  json x = Submit(json{{"prompt", "video x"}, {"size", "1280x720"}, {"filename", "clip-x"}});
  json y = Submit(json{{"prompt", "video y"}, {"size", "1280x720"}, {"filename", "clip-y.mp4"}});
  json z = Submit(json{{"prompt", "video z"}, {"size", "1280x720"}, {"filename", "clip-z"}});
  EXPECT_EQ(x.value("filename", ""), "clip-x.mp4");
  for (const json* job : {&x, &y, &z}) ASSERT_EQ(WaitFinished(job->value("id", "")).value("status", ""), "success");

  for (std::string query : {"/videos", "/videos?filenames=clip-x.mp4&all=true", "/videos?ids=a&filenames=b",
                            "/videos?filenames=../state.db", "/videos?filenames=.hidden"}) {
    Reply refused = Delete(query);
    EXPECT_EQ(refused.status, 400) << query << ": " << refused.body;
    EXPECT_TRUE(refused.data.is_object() && refused.data["error"].is_string()) << refused.body;
  }
  EXPECT_TRUE(fs::exists(data_dir() + "/state.db"));

  Reply by_name = Delete("/videos?filenames=clip-x.mp4,missing.mp4");
  ASSERT_EQ(by_name.status, 200) << by_name.body;
  EXPECT_EQ(by_name.data["deleted"], json::array({"clip-x.mp4"}));
  EXPECT_EQ(by_name.data["not_found"], json::array({"missing.mp4"}));
  EXPECT_FALSE(fs::exists(ResultPath("clip-x.mp4")));
  EXPECT_TRUE(fs::exists(ResultPath("clip-y.mp4")));
  // The job stays; only its file went.
  EXPECT_EQ(Get("/status/" + x.value("id", "")).status, 200);

  Reply by_id = Delete("/videos?ids=" + y.value("id", "") + ",no-such-job");
  ASSERT_EQ(by_id.status, 200) << by_id.body;
  EXPECT_EQ(by_id.data["deleted"], json::array({"clip-y.mp4"}));
  EXPECT_EQ(by_id.data["not_found"], json::array({"no-such-job"}));
  EXPECT_FALSE(fs::exists(ResultPath("clip-y.mp4")));

  Reply everything = Delete("/videos?all=true");
  ASSERT_EQ(everything.status, 200) << everything.body;
  EXPECT_EQ(everything.data["deleted"], json::array({"clip-z.mp4"}));
  EXPECT_FALSE(fs::exists(ResultPath("clip-z.mp4")));
  EXPECT_EQ(Get("/videos").data["videos"], json::array());
}

TEST_F(ServerApiTest, RangeBeyondTheEndIsNotSatisfiable) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  json job = SubmitPrompt("range");
  ASSERT_EQ(WaitFinished(job.value("id", "")).value("status", ""), "success");
  const std::string name = job.value("filename", "");
  const size_t size = ReadWholeFile(ResultPath(name)).size();
  ASSERT_GT(size, 0u);

  Reply tail = Get("/files/" + name, {{"Range", "bytes=-10"}});
  EXPECT_EQ(tail.status, 206);
  EXPECT_EQ(tail.body.size(), 10u);
  // RFC 9110 section 14.1.1: a first position at or past the end cannot be
  // satisfied: 416 with Content-Range: bytes */<size>.
  for (const std::string& range : {"bytes=" + std::to_string(size) + "-", std::string("bytes=99999999-")}) {
    Reply reply = Get("/files/" + name, {{"Range", range}});
    EXPECT_EQ(reply.status, 416) << range << " -> Content-Range: " << reply.Header("Content-Range")
                                 << ", Content-Length: " << reply.Header("Content-Length");
    EXPECT_LE(std::strtoull(reply.Header("Content-Length").c_str(), nullptr, 10), size) << range;
  }
}

// --- 4. bad input ---------------------------------------------------------

TEST_F(ServerApiTest, GenerateRefusesBadInputAndQueuesNothing) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const std::vector<std::string> bodies = {
      R"({"size": "1280x720"})",
      R"({"prompt": "", "size": "1280x720"})",
      R"({"prompt": "  \n\t ", "size": "1280x720"})",
      R"({"prompt": 42, "size": "1280x720"})",
      R"({"prompt": "a cat"})",
      R"({"prompt": "a cat", "size": "1920x1080"})",
      R"({"prompt": "a cat", "size": "1280x704"})",
      R"({"prompt": "a cat", "size": "1280x720", "resize_mode": "stretch"})",
      R"(not json at all)",
      R"(["prompt", "a cat"])",
      R"({"prompt": "a cat", "size": "1280x720", "filename": "../evil"})",
      R"({"prompt": "a cat", "size": "1280x720", "filename": "../../etc/evil.mp4"})",
      R"({"prompt": "a cat", "size": "1280x720", "filename": "sub/evil"})",
      R"({"prompt": "a cat", "size": "1280x720", "filename": "/tmp/evil"})",
      R"({"prompt": "a cat", "size": "1280x720", "filename": ".hidden"})",
      R"({"prompt": "a cat", "size": "1280x720", "filename": "%2e%2e%2fevil"})",
      R"({"prompt": "a cat", "size": "1280x720", "filename": "..%2F..%2Fevil"})",
      R"({"prompt": "a cat", "size": "1280x720", "filename": "..\\evil"})",
      R"({"prompt": "a cat", "size": "1280x720", "webhook": "file:///etc/passwd"})",
  };
  for (const std::string& body : bodies) {
    Reply reply = Post("/generate", body);
    EXPECT_EQ(reply.status, 400) << body << " -> " << reply.body;
    ASSERT_TRUE(reply.data.is_object()) << body << " -> " << reply.body;
    EXPECT_TRUE(reply.data["error"].is_string() && !reply.data["error"].get<std::string>().empty()) << reply.body;
  }
  Reply metrics = Get("/metrics");
  ASSERT_EQ(metrics.status, 200);
  for (const char* status : {"queued", "running", "success", "error", "canceled"}) {
    EXPECT_LE(MetricValue(metrics.body, std::string("tessera_jobs{status=\"") + status + "\"}"), 0) << metrics.body;
  }
  EXPECT_EQ(MetricValue(metrics.body, "tessera_queue_depth"), 0);
  EXPECT_FALSE(fs::exists(dir_.path() + "/evil.mp4"));
  EXPECT_FALSE(fs::exists(data_dir() + "/evil.mp4"));
}

TEST_F(ServerApiTest, FilesRouteNeverServesOutsideResults) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const std::string secret = "top secret contents";
  std::ofstream(data_dir() + "/secret.txt") << secret;
  std::ofstream(data_dir() + "/results/.hidden.mp4") << secret;
  for (std::string path :
       {"/files/..%2F..%2Fetc%2Fpasswd", "/files/..%2Fsecret.txt", "/files/%2e%2e%2fsecret.txt",
        "/files/%2E%2E%2Fsecret.txt", "/files/../secret.txt", "/files/..%252Fsecret.txt", "/files/..", "/files/%2e%2e",
        "/files/.hidden.mp4", "/files/%2fetc%2fpasswd", "/files/..%5Csecret.txt", "/files/state.db",
        "/files/secret.txt", "/files/does-not-exist.mp4"}) {
    Reply reply = Get(path);
    EXPECT_TRUE(reply.status == 404 || reply.status == 400) << path << " -> " << reply.status;
    EXPECT_EQ(reply.body.find(secret), std::string::npos) << path;
    EXPECT_EQ(reply.body.find("root:"), std::string::npos) << path;
  }
}

TEST_F(ServerApiTest, UnknownJobIdIsNotFound) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  Reply status = Get("/status/00000000-0000-4000-8000-000000000000");
  EXPECT_EQ(status.status, 404);
  EXPECT_TRUE(status.data.is_object() && status.data["error"].is_string()) << status.body;
  EXPECT_EQ(Get("/events?job_id=no-such-job").status, 404);
  EXPECT_EQ(Post("/webhook", json{{"url", "http://127.0.0.1:9/x"}, {"job_id", "no-such-job"}}.dump()).status, 404);
}

TEST_F(ServerApiTest, DuplicateFilenameIsConflict) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  json first = Submit(json{{"prompt", "original"}, {"size", "1280x720"}, {"filename", "same-name"}});
  // While the first job is live, and again once its file exists.
  Reply while_live =
      Post("/generate", json{{"prompt", "copy"}, {"size", "1280x720"}, {"filename", "same-name.mp4"}}.dump());
  EXPECT_EQ(while_live.status, 409) << while_live.body;
  EXPECT_TRUE(while_live.data["error"].is_string()) << while_live.body;
  ASSERT_EQ(WaitFinished(first.value("id", "")).value("status", ""), "success");
  Reply after = Post("/generate", json{{"prompt", "copy"}, {"size", "1280x720"}, {"filename", "same-name"}}.dump());
  EXPECT_EQ(after.status, 409) << after.body;
  EXPECT_EQ(Get("/jobs/lookup?prompt=copy").status, 404);
}

TEST_F(ServerApiTest, GeneratorFailureIsAnErrorWithItsMessage) {
  ASSERT_NO_FATAL_FAILURE(StartServer({}, {{"FAKE_GENERATE_FAIL", "1"}}));
  json job = SubmitPrompt("this one fails");
  json finished = WaitFinished(job.value("id", ""));
  EXPECT_EQ(finished.value("status", ""), "error") << finished.dump();
  ASSERT_TRUE(finished["error"].is_string()) << finished.dump();
  EXPECT_NE(finished["error"].get<std::string>().find("fake generator failure"), std::string::npos) << finished.dump();
  EXPECT_TRUE(finished["file_url"].is_null());
  EXPECT_FALSE(fs::exists(ResultPath(job.value("filename", ""))));
  EXPECT_EQ(Get("/files/" + job.value("filename", "")).status, 404);
  EXPECT_NE(ReadWholeFile(LogPath(job.value("id", ""))).find("RuntimeError"), std::string::npos);
}

// --- 5. auth ----------------------------------------------------------------

TEST_F(ServerApiTest, BearerTokenIsRequiredExceptForHealth) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--token", "secret"}));
  Reply bare = Get("/videos");
  EXPECT_EQ(bare.status, 401) << bare.body;
  EXPECT_NE(bare.Header("WWW-Authenticate").find("Bearer"), std::string::npos);
  EXPECT_TRUE(bare.data.is_object() && bare.data["error"].is_string()) << bare.body;
  EXPECT_EQ(Get("/videos", {{"Authorization", "Bearer wrong"}}).status, 401);
  EXPECT_EQ(Get("/videos", {{"Authorization", "Bearer secretx"}}).status, 401);
  EXPECT_EQ(Get("/videos", {{"Authorization", "Basic secret"}}).status, 401);
  EXPECT_EQ(Post("/generate", json{{"prompt", "sneaky"}, {"size", "1280x720"}}.dump()).status, 401);
  EXPECT_EQ(Get("/health").status, 200);

  token_ = "secret";
  EXPECT_EQ(Get("/videos").status, 200);
  EXPECT_EQ(Get("/jobs/lookup?prompt=sneaky").status, 404);  // the refused submit queued nothing
  json job = SubmitPrompt("with the token");
  EXPECT_EQ(WaitFinished(job.value("id", "")).value("status", ""), "success");
}

// Runs `tessera serve` with `args` (bounded by `timeout`, so a server that starts
// when it should not fails the test instead of hanging it); returns its wait
// status and stderr.
struct Refusal {
  int wait_status = -1;
  std::string stderr_text;
};
Refusal RunServeExpectingRefusal(const std::string& dir, std::vector<std::string> args,
                                 std::map<std::string, std::string> env = {}) {
  SubprocessOptions spawn;
  spawn.argv = {"timeout", "20", TesseraBinary(), "serve", "--data-dir", dir + "/data", "--log-format", "kv"};
  spawn.argv.insert(spawn.argv.end(), args.begin(), args.end());
  spawn.extra_env = std::move(env);
  spawn.pipe_stdin = false;
  spawn.pipe_stdout = false;
  spawn.stderr_path = dir + "/refusal-stderr.log";
  Refusal refusal;
  auto started = Subprocess::Start(spawn);
  if (!started.ok()) {
    ADD_FAILURE() << started.status().ToString();
    return refusal;
  }
  auto status = started->Wait();
  if (status.ok()) refusal.wait_status = *status;
  refusal.stderr_text = ReadWholeFile(spawn.stderr_path);
  return refusal;
}

bool ExitedWithFailure(int wait_status) {
  return WIFEXITED(wait_status) && WEXITSTATUS(wait_status) != 0 && WEXITSTATUS(wait_status) != 124;
}

TEST_F(ServerApiTest, NonLoopbackWithoutTokenRefusesToStart) {
  Refusal refusal = RunServeExpectingRefusal(dir_.path(), {"--host", "0.0.0.0", "--port", "0"});
  EXPECT_TRUE(ExitedWithFailure(refusal.wait_status)) << refusal.wait_status << "\n" << refusal.stderr_text;
  EXPECT_NE(refusal.stderr_text.find("token"), std::string::npos) << refusal.stderr_text;
  EXPECT_NE(refusal.stderr_text.find("0.0.0.0"), std::string::npos) << refusal.stderr_text;
}

// --- 6. rate limit ------------------------------------------------------------

TEST_F(ServerApiTest, RateLimitAnswers429WithRetryAfter) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--rate-limit-per-minute", "60", "--rate-limit-burst", "3"}));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Get("/videos").status, 200) << "request " << i + 1;
  Reply limited = Get("/videos");
  EXPECT_EQ(limited.status, 429) << limited.body;
  EXPECT_GE(std::atoi(limited.Header("Retry-After").c_str()), 1) << "Retry-After: " << limited.Header("Retry-After");
  EXPECT_TRUE(limited.data.is_object() && limited.data["error"].is_string()) << limited.body;
  EXPECT_EQ(Get("/health").status, 200);  // probes are never limited
}

// --- 7. configuration -----------------------------------------------------------

TEST_F(ServerApiTest, InvalidConfigurationRefusesToStartNamingTheSetting) {
  std::string config = dir_.path() + "/unknown.json";
  std::ofstream(config) << R"({"port": 8080, "colour": "blue"})";
  struct Case {
    std::vector<std::string> args;
    std::map<std::string, std::string> env;
    std::string named;
  };
  const std::vector<Case> cases = {
      {{"--port", "99999"}, {}, "port"},
      {{"--port", "0", "--resize-mode", "stretch"}, {}, "resize_mode"},
      {{"--port", "0", "--config", config}, {}, "colour"},
      {{"--port", "0"}, {{"TESSERA_CPU_LANES", "zero"}}, "TESSERA_CPU_LANES"},
      {{"--port", "0", "--host-base-url", "ftp://example.com"}, {}, "host_base_url"},
  };
  for (const Case& c : cases) {
    Refusal refusal = RunServeExpectingRefusal(dir_.path(), c.args, c.env);
    EXPECT_TRUE(ExitedWithFailure(refusal.wait_status)) << c.named << ": " << refusal.wait_status << "\n"
                                                        << refusal.stderr_text;
    EXPECT_NE(refusal.stderr_text.find(c.named), std::string::npos) << c.named << ": " << refusal.stderr_text;
  }
}

TEST_F(ServerApiTest, FlagBeatsEnvironmentBeatsConfigFile) {
  const std::string from_file = dir_.path() + "/from-file";
  const std::string from_env = dir_.path() + "/from-env";
  const std::string from_flag = dir_.path() + "/from-flag";
  const std::string config = dir_.path() + "/config.json";
  std::ofstream(config) << json{{"results_dir", from_file}}.dump();

  struct Case {
    std::string name;
    bool env;
    bool flag;
    std::string expected_dir;
  };
  for (const Case& c : {Case{"file", false, false, from_file}, Case{"env", true, false, from_env},
                        Case{"flag", true, true, from_flag}}) {
    ServerOptions options;
    options.data_dir = dir_.path() + "/data-" + c.name;
    options.args = {"--config", config};
    if (c.flag) options.args.insert(options.args.end(), {"--results-dir", from_flag});
    if (c.env) options.env["RESULTS_DIR"] = from_env;
    server_ = std::make_unique<ServerProcess>(options);
    ASSERT_TRUE(server_->started()) << server_->stderr_text();
    json job = Submit(json{{"prompt", "precedence"}, {"size", "1280x720"}, {"filename", "where-" + c.name}});
    ASSERT_EQ(WaitFinished(job.value("id", "")).value("status", ""), "success") << c.name;
    for (const std::string& dir : {from_file, from_env, from_flag, options.data_dir + "/results"}) {
      EXPECT_EQ(fs::exists(dir + "/where-" + c.name + ".mp4"), dir == c.expected_dir) << c.name << " in " << dir;
    }
    EXPECT_EQ(Get("/files/where-" + c.name + ".mp4").status, 200) << c.name;
    server_.reset();
  }
}

// --- 8. webhooks --------------------------------------------------------------

TEST_F(ServerApiTest, WebhooksCarryTheFinishedJobSignedWithHmac) {
  WebhookReceiver receiver;
  ASSERT_NO_FATAL_FAILURE(StartServer({"--webhook-secret", "k"}, {{"FAKE_GENERATE_BLOCK_FILE", BlockFile()}}));
  Reply global = Post("/webhook", json{{"url", receiver.Url("/global")}}.dump());
  ASSERT_EQ(global.status, 201) << global.body;
  EXPECT_EQ(global.data.value("url", ""), receiver.Url("/global"));
  EXPECT_TRUE(global.data["job_id"].is_null()) << global.body;
  EXPECT_EQ(Post("/webhook", json{{"url", "ftp://example.com/x"}}.dump()).status, 400);
  EXPECT_EQ(Post("/webhook", "nope").status, 400);

  json first =
      Submit(json{{"prompt", "tell me when done"}, {"size", "1280x720"}, {"webhook", receiver.Url("/per-job")}});
  const std::string first_id = first.value("id", "");
  FollowEvents(first_id, "running");
  json second = SubmitPrompt("the other job");
  const std::string second_id = second.value("id", "");
  Reply bound = Post("/webhook", json{{"url", receiver.Url("/bound-first")}, {"job_id", first_id}}.dump());
  ASSERT_EQ(bound.status, 201) << bound.body;
  EXPECT_EQ(bound.data.value("job_id", ""), first_id);
  ASSERT_EQ(Post("/webhook", json{{"url", receiver.Url("/bound-second")}, {"job_id", second_id}}.dump()).status, 201);
  Release();
  ASSERT_EQ(WaitFinished(first_id).value("status", ""), "success");
  ASSERT_EQ(WaitFinished(second_id).value("status", ""), "success");

  // first: its own URL, its registration, the global one; second: its registration, the global one.
  auto deliveries = receiver.WaitFor(5);
  ASSERT_EQ(deliveries.size(), 5u);
  std::set<std::pair<std::string, std::string>> seen;  // (path, job id)
  for (const auto& delivery : deliveries) {
    json body = json::parse(delivery.body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << delivery.body;
    seen.insert({delivery.path, body.value("id", "")});
    EXPECT_EQ(body.value("status", ""), "success") << delivery.body;
    EXPECT_TRUE(body["file_url"].is_string()) << delivery.body;
    auto signature = delivery.headers.find("X-Tessera-Signature");
    ASSERT_NE(signature, delivery.headers.end()) << delivery.path;
    EXPECT_EQ(signature->second, "sha256=" + HmacSha256Hex("k", delivery.body));
    EXPECT_NE(signature->second, "sha256=" + HmacSha256Hex("not-k", delivery.body));
  }
  std::set<std::pair<std::string, std::string>> expected = {{"/per-job", first_id},
                                                            {"/bound-first", first_id},
                                                            {"/global", first_id},
                                                            {"/bound-second", second_id},
                                                            {"/global", second_id}};
  EXPECT_EQ(seen, expected);
}

// --- 9. operations: metrics, readiness, health ----------------------------------

TEST_F(ServerApiTest, MetricsCountJobsQueueLanesAndDurations) {
  ASSERT_NO_FATAL_FAILURE(StartBlockingServer());
  Reply idle = Get("/metrics");
  ASSERT_EQ(idle.status, 200);
  EXPECT_EQ(MetricValue(idle.body, "tessera_queue_depth"), 0) << idle.body;
  EXPECT_EQ(MetricValue(idle.body, "tessera_lane_busy{lane=\"cpu:0\"}"), 0) << idle.body;

  json a = SubmitPrompt("metrics a");
  FollowEvents(a.value("id", ""), "running");
  json b = SubmitPrompt("metrics b");

  Reply busy = Get("/metrics");
  ASSERT_EQ(busy.status, 200);
  EXPECT_NE(busy.Header("Content-Type").find("text/plain"), std::string::npos);
  EXPECT_EQ(MetricValue(busy.body, "tessera_queue_depth"), 1) << busy.body;
  EXPECT_EQ(MetricValue(busy.body, "tessera_lane_busy{lane=\"cpu:0\"}"), 1) << busy.body;
  EXPECT_EQ(MetricValue(busy.body, "tessera_jobs{status=\"running\"}"), 1) << busy.body;
  EXPECT_EQ(MetricValue(busy.body, "tessera_jobs{status=\"queued\"}"), 1) << busy.body;

  Release();
  ASSERT_EQ(WaitFinished(a.value("id", "")).value("status", ""), "success");
  ASSERT_EQ(WaitFinished(b.value("id", "")).value("status", ""), "success");
  // The lane records a job's duration before it takes the next one: once c runs,
  // a and b are in the histogram.
  fs::remove(BlockFile());
  json c = SubmitPrompt("metrics c");
  FollowEvents(c.value("id", ""), "running");

  Reply after = Get("/metrics");
  ASSERT_EQ(after.status, 200);
  EXPECT_EQ(MetricValue(after.body, "tessera_jobs{status=\"success\"}"), 2) << after.body;
  EXPECT_EQ(MetricValue(after.body, "tessera_queue_depth"), 0) << after.body;
  EXPECT_EQ(MetricValue(after.body, "tessera_lane_busy{lane=\"cpu:0\"}"), 1) << after.body;
  EXPECT_EQ(
      MetricValue(after.body, "tessera_job_duration_seconds_bucket{kind=\"generate\",status=\"success\",le=\"+Inf\"}"),
      2)
      << after.body;
  EXPECT_EQ(MetricValue(after.body, "tessera_job_duration_seconds_count{kind=\"generate\",status=\"success\"}"), 2)
      << after.body;

  Release();
  ASSERT_EQ(WaitFinished(c.value("id", "")).value("status", ""), "success");
  Reply done = Get("/metrics");
  EXPECT_EQ(MetricValue(done.body, "tessera_jobs{status=\"success\"}"), 3) << done.body;
}

TEST_F(ServerApiTest, ReadyFollowsTheCheckpointFolderHealthDoesNot) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  Reply health = Get("/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.data.value("status", ""), "ok") << health.body;
  Reply ready = Get("/ready");
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_EQ(ready.data.value("ready", false), true) << ready.body;

  // The fixture's --wan-ckpt-dir now points nowhere.
  fs::remove_all(data_dir() + "/ckpt");
  Reply not_ready = Get("/ready");
  EXPECT_EQ(not_ready.status, 503) << not_ready.body;
  EXPECT_EQ(not_ready.data.value("ready", true), false) << not_ready.body;
  EXPECT_EQ(not_ready.data["checks"]["ckpt_dir"].value("ok", true), false) << not_ready.body;
  EXPECT_EQ(Get("/health").status, 200);
}

}  // namespace
}  // namespace tessera::test
