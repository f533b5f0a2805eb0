// Image batches through a real server (issue 6 acceptance): per-image failure,
// exact counts, retries that flip nothing that succeeded, failure injection at
// upload, creation, in the worker and of the whole server.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "../support/job_events.h"
#include "../support/server_process.h"
#include "../support/test_images.h"
#include "../support/webhook_receiver.h"

namespace tessera::test {
namespace {

using nlohmann::json;

// Rows of the server's database, read directly: the truth the API must match.
struct StoreCounts {
  int64_t batches = 0, images = 0, jobs = 0, batch_jobs = 0;
  // Batch jobs no image row knows (its current job_id), plus images whose job is missing.
  int64_t orphans = 0;
};

int64_t CountSql(sqlite3* db, const char* sql) {
  sqlite3_stmt* statement = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &statement, nullptr), SQLITE_OK) << sql << ": " << sqlite3_errmsg(db);
  int64_t value = -1;
  if (sqlite3_step(statement) == SQLITE_ROW) value = sqlite3_column_int64(statement, 0);
  sqlite3_finalize(statement);
  return value;
}

StoreCounts ReadStore(const std::string& data_dir) {
  StoreCounts counts;
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2((data_dir + "/state.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  counts.batches = CountSql(db, "SELECT COUNT(*) FROM batches");
  counts.images = CountSql(db, "SELECT COUNT(*) FROM batch_images");
  counts.jobs = CountSql(db, "SELECT COUNT(*) FROM jobs");
  counts.batch_jobs = CountSql(db, "SELECT COUNT(*) FROM jobs WHERE batch_id != ''");
  // Every batch job belongs to an existing batch; every image's job exists; and no
  // job of a batch is unfinished without being its image's current job.
  counts.orphans = CountSql(db,
                            "SELECT (SELECT COUNT(*) FROM jobs WHERE batch_id != '' AND batch_id NOT IN "
                            "(SELECT id FROM batches)) + (SELECT COUNT(*) FROM batch_images WHERE job_id NOT IN "
                            "(SELECT id FROM jobs)) + (SELECT COUNT(*) FROM jobs WHERE batch_id != '' AND status IN "
                            "('queued','running') AND id NOT IN (SELECT job_id FROM batch_images))");
  sqlite3_close(db);
  return counts;
}

// `good + corrupt` small PNGs; the corrupt ones (broken headers) are spread through
// the upload (positions 1, 7, 13...), named corrupt_*.
httplib::MultipartFormDataItems ImageParts(int good, int corrupt, int size = 16) {
  httplib::MultipartFormDataItems items;
  int corrupt_left = corrupt;
  for (int i = 0; i < good + corrupt; ++i) {
    bool bad = corrupt_left > 0 && (i % 6 == 1 || good + corrupt - i == corrupt_left);
    if (bad) corrupt_left -= 1;
    std::vector<uint8_t> png = GradientPng(size + i % 3, size, 3, 8);
    std::string bytes(png.begin(), png.end());
    // A PNG signature and IHDR tag followed by garbage: recognisably a PNG, and
    // broken in its header (a truncated file can decode partially in libvips).
    if (bad) bytes = bytes.substr(0, 16) + std::string(48, '\x5a');
    std::string name = (bad ? "corrupt_" : "image_") + std::to_string(i) + ".png";
    items.push_back({"images", bytes, name, "image/png"});
  }
  return items;
}

void AddField(httplib::MultipartFormDataItems& items, const std::string& name, const std::string& value) {
  items.push_back({name, value, "", ""});
}

json GetJson(httplib::Client& client, const std::string& path, int expected = 200) {
  auto response = client.Get(path.c_str());
  EXPECT_TRUE(response) << path;
  if (!response) return json();
  EXPECT_EQ(response->status, expected) << path << ": " << response->body;
  return json::parse(response->body, nullptr, false);
}

TEST(ServerBatch, CorruptImagesFailAloneAndTheBatchEndsPartiallyCompletedWithExactCounts) {
  TempDir dir;
  WebhookReceiver hooks;
  ServerProcess server({dir.path() + "/data", {"--batch-retry-delay-s", "0"}, {}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();

  auto items = ImageParts(25, 5);
  AddField(items, "model", "lanczos");
  AddField(items, "scale", "2");
  AddField(items, "webhook", hooks.Url("/batch"));
  auto uploaded = client->Post("/images/games/game-42/batch-upload", items);
  ASSERT_TRUE(uploaded);
  ASSERT_EQ(uploaded->status, 202) << uploaded->body;
  json created = json::parse(uploaded->body);
  EXPECT_EQ(created["total_images"], 30);
  EXPECT_EQ(created["status"], "PENDING");
  std::string batch = created["batch_id"];
  // Originals are stored under the game's folder.
  std::string folder = server.data_dir() + "/games/game-42/batches/" + batch;
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(folder + "/originals"), {}), 30);

  ASSERT_TRUE(hooks.WaitForCalls(1)) << "the batch never settled";
  json settled = json::parse(hooks.calls()[0].body);
  EXPECT_EQ(settled["status"], "PARTIALLY_COMPLETED");
  EXPECT_EQ(hooks.calls()[0].headers.find("X-Tessera-Event")->second, "batch.settled");

  json status = GetJson(*client, "/images/batches/" + batch + "/status");
  EXPECT_EQ(status["status"], "PARTIALLY_COMPLETED");
  EXPECT_EQ(status["progress"], "25/30 images processed");
  EXPECT_EQ(status["failed"], "5/30 images failed");
  EXPECT_DOUBLE_EQ(status["percentage"].get<double>(), 83.33);
  EXPECT_EQ(status["counts"]["COMPLETED"], 25);
  EXPECT_EQ(status["counts"]["FAILED"], 5);
  EXPECT_EQ(status["can_retry"], true);

  json images = GetJson(*client, "/images/batches/" + batch + "/images")["images"];
  ASSERT_EQ(images.size(), 30u);
  std::map<std::string, std::string> completed_jobs;  // image -> job, before the retry
  for (const json& image : images) {
    bool corrupt = image["original_name"].get<std::string>().find("corrupt") != std::string::npos;
    EXPECT_EQ(image["status"], corrupt ? "FAILED" : "COMPLETED") << image.dump();
    EXPECT_EQ(image["attempts"], 1) << "a corrupt image is not retried automatically";
    if (corrupt) {
      EXPECT_NE(image["error"].get<std::string>().find("BAD_IMAGE"), std::string::npos) << image.dump();
      continue;
    }
    completed_jobs[image["image_id"]] = image["job_id"];
    auto result = client->Get(image["result_url"].get<std::string>().c_str());
    ASSERT_TRUE(result);
    ASSERT_EQ(result->status, 200);
    auto pixels = DecodePixels(std::vector<uint8_t>(result->body.begin(), result->body.end()));
    EXPECT_EQ(pixels.height, 32);
  }
  StoreCounts counts = ReadStore(server.data_dir());
  EXPECT_EQ(counts.batches, 1);
  EXPECT_EQ(counts.images, 30);
  EXPECT_EQ(counts.batch_jobs, 30);
  EXPECT_EQ(counts.orphans, 0);

  // A retry runs the failed images again (they fail again) and touches nothing else.
  auto retry = client->Post(("/images/batches/" + batch + "/retry").c_str());
  ASSERT_TRUE(retry);
  ASSERT_EQ(retry->status, 202) << retry->body;
  EXPECT_EQ(json::parse(retry->body)["retried"], 5);
  json after;
  json retried_images = GetJson(*client, "/images/batches/" + batch + "/images")["images"];
  for (const json& image : retried_images) {
    if (image["original_name"].get<std::string>().find("corrupt") == std::string::npos) continue;
    after = WaitFinished(*client, image["job_id"]);
    EXPECT_EQ(after["status"], "error");
  }
  json again = GetJson(*client, "/images/batches/" + batch + "/images")["images"];
  for (const json& image : again) {
    if (completed_jobs.count(image["image_id"])) {
      EXPECT_EQ(image["status"], "COMPLETED");
      EXPECT_EQ(image["job_id"], completed_jobs[image["image_id"]]) << "a completed image was run again";
      EXPECT_EQ(image["attempts"], 1);
    } else {
      EXPECT_EQ(image["status"], "FAILED");
      EXPECT_EQ(image["attempts"], 2);
    }
  }
  json final_status = GetJson(*client, "/images/batches/" + batch + "/status");
  EXPECT_EQ(final_status["status"], "PARTIALLY_COMPLETED");
  EXPECT_EQ(final_status["progress"], "25/30 images processed");
  counts = ReadStore(server.data_dir());
  EXPECT_EQ(counts.batch_jobs, 35);  // one new job per retried image
  EXPECT_EQ(counts.orphans, 0);
}

TEST(ServerBatch, AStorageFailureMidUploadRefusesTheWholeUploadAndLeavesNothing) {
  TempDir dir;
  ServerProcess server({dir.path() + "/data", {"--test-failpoints", "upload.write@3"}, {}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  auto items = ImageParts(5, 0);
  auto uploaded = client->Post("/images/games/g1/batch-upload", items);
  ASSERT_TRUE(uploaded);
  EXPECT_EQ(uploaded->status, 500) << uploaded->body;
  EXPECT_NE(uploaded->body.find("nothing was created"), std::string::npos) << uploaded->body;
  std::string batches = server.data_dir() + "/games/g1/batches";
  EXPECT_TRUE(!std::filesystem::exists(batches) || std::filesystem::is_empty(batches));
  StoreCounts counts = ReadStore(server.data_dir());
  EXPECT_EQ(counts.batches, 0);
  EXPECT_EQ(counts.images, 0);
  EXPECT_EQ(counts.jobs, 0);
  // The server goes on: the next upload (the failpoint fired once) succeeds.
  auto next = client->Post("/images/games/g1/batch-upload", ImageParts(2, 0));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 202) << next->body;
}

TEST(ServerBatch, AStoreFailureDuringCreationRollsBackEverything) {
  TempDir dir;
  ServerProcess server({dir.path() + "/data", {"--test-failpoints", "store.create_batch"}, {}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  auto uploaded = client->Post("/images/games/g2/batch-upload", ImageParts(4, 0));
  ASSERT_TRUE(uploaded);
  EXPECT_EQ(uploaded->status, 500) << uploaded->body;
  EXPECT_NE(uploaded->body.find("nothing was created"), std::string::npos);
  StoreCounts counts = ReadStore(server.data_dir());
  EXPECT_EQ(counts.batches, 0);
  EXPECT_EQ(counts.images, 0);
  EXPECT_EQ(counts.jobs, 0);
  std::string batches = server.data_dir() + "/games/g2/batches";
  EXPECT_TRUE(!std::filesystem::exists(batches) || std::filesystem::is_empty(batches));
}

TEST(ServerBatch, AWorkerThatDiesUnderAnImageIsReplacedAndTheImageRetriedAfterTheDelay) {
  TempDir dir;
  WebhookReceiver hooks;
  // The 2nd image's worker dies as the image is sent; one start per job, so the
  // job fails and the batch retries the image itself after its delay.
  ServerProcess server({dir.path() + "/data",
                        {"--test-failpoints", "upscale.kill_worker@2", "--max-attempts", "1",
                         "--batch-retry-delay-s", "0.2"},
                        {}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  auto items = ImageParts(4, 0);
  AddField(items, "model", "lanczos");
  AddField(items, "webhook", hooks.Url());
  auto uploaded = client->Post("/images/games/g3/batch-upload", items);
  ASSERT_TRUE(uploaded);
  ASSERT_EQ(uploaded->status, 202) << uploaded->body;
  std::string batch = json::parse(uploaded->body)["batch_id"];
  ASSERT_TRUE(hooks.WaitForCalls(1));
  json status = GetJson(*client, "/images/batches/" + batch + "/status");
  EXPECT_EQ(status["status"], "COMPLETED") << status.dump();
  EXPECT_EQ(status["progress"], "4/4 images processed");
  int retried = 0;
  json listed = GetJson(*client, "/images/batches/" + batch + "/images")["images"];
  for (const json& image : listed) {
    EXPECT_EQ(image["status"], "COMPLETED");
    if (image["attempts"] == 2) retried += 1;
  }
  EXPECT_EQ(retried, 1);
  EXPECT_NE(server.stderr_text().find("batch_retry_scheduled"), std::string::npos);
  StoreCounts counts = ReadStore(server.data_dir());
  EXPECT_EQ(counts.batch_jobs, 5);
  EXPECT_EQ(counts.orphans, 0);
}

TEST(ServerBatch, ABatchResumesAfterTheServerIsKilledMidway) {
  TempDir dir;
  std::string data = dir.path() + "/data";
  std::string batch;
  {
    ServerProcess server({data, {"--batch-parallel-workers", "1"}, {}});
    ASSERT_TRUE(server.started());
    auto client = server.Client();
    auto items = ImageParts(6, 0, 200);  // big enough that a model takes a while on each
    AddField(items, "model", "realesr-animevideov3-x2");
    auto uploaded = client->Post("/images/games/g4/batch-upload", items);
    ASSERT_TRUE(uploaded);
    ASSERT_EQ(uploaded->status, 202) << uploaded->body;
    batch = json::parse(uploaded->body)["batch_id"];
    json images = GetJson(*client, "/images/batches/" + batch + "/images")["images"];
    ASSERT_EQ(WaitRunning(*client, images[0]["job_id"])["status"], "running");
    server.Kill();
  }
  StoreCounts before = ReadStore(data);
  EXPECT_EQ(before.images, 6);
  EXPECT_EQ(before.orphans, 0);

  WebhookReceiver hooks;
  ServerProcess restarted({data, {}, {}});
  ASSERT_TRUE(restarted.started());
  auto client = restarted.Client();
  json images = GetJson(*client, "/images/batches/" + batch + "/images")["images"];
  for (const json& image : images) {
    json done = WaitFinished(*client, image["job_id"]);
    EXPECT_EQ(done["status"], "success") << done.dump();
  }
  json status = GetJson(*client, "/images/batches/" + batch + "/status");
  EXPECT_EQ(status["status"], "COMPLETED");
  EXPECT_EQ(status["progress"], "6/6 images processed");
  StoreCounts after = ReadStore(data);
  EXPECT_EQ(after.batch_jobs, 6);  // the interrupted job ran again as itself: no new job
  EXPECT_EQ(after.orphans, 0);
}

TEST(ServerBatch, BadRequestsAreRefusedClearly) {
  TempDir dir;
  ServerProcess server({dir.path() + "/data", {}, {}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  auto traversal = client->Post("/images/games/..%2F..%2Fetc/batch-upload", ImageParts(1, 0));
  ASSERT_TRUE(traversal);
  EXPECT_NE(traversal->status, 202);
  httplib::MultipartFormDataItems no_images;
  AddField(no_images, "model", "lanczos");
  auto empty = client->Post("/images/games/g5/batch-upload", no_images);
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->status, 400) << empty->body;
  auto items = ImageParts(2, 0);
  AddField(items, "model", "no-such-model");
  auto unknown = client->Post("/images/games/g5/batch-upload", items);
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 400) << unknown->body;
  EXPECT_EQ(ReadStore(server.data_dir()).batches, 0);
  auto missing = client->Get("/images/batches/00000000-0000-4000-8000-000000000000/status");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  auto nothing_to_retry = client->Post("/images/batches/00000000-0000-4000-8000-000000000000/retry");
  ASSERT_TRUE(nothing_to_retry);
  EXPECT_EQ(nothing_to_retry->status, 404);
}

}  // namespace
}  // namespace tessera::test
