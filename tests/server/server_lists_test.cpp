// List routes page with a cursor (issue 16): GET /jobs, GET /jobs/lookup?all=true
// and GET /videos return `limit` entries and a next_cursor until the last page.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "../support/server_process.h"

namespace tessera::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

json GetJson(httplib::Client& client, const std::string& path) {
  auto response = client.Get(path.c_str());
  EXPECT_TRUE(response) << path;
  if (!response) return json();
  EXPECT_EQ(response->status, 200) << path << ": " << response->body;
  return json::parse(response->body, nullptr, false);
}

// Follows next_cursor from `first` (a path ending in '&' or '?'); the entries'
// `key` values in the order they came.
std::vector<std::string> Walk(httplib::Client& client, const std::string& first, const std::string& list,
                              const std::string& key, size_t page_size) {
  std::vector<std::string> seen;
  std::string path = first;
  for (int pages = 0; pages < 100; ++pages) {
    json page = GetJson(client, path);
    EXPECT_LE(page[list].size(), page_size);
    for (const json& entry : page[list]) seen.push_back(entry[key].get<std::string>());
    if (page["next_cursor"].is_null()) return seen;
    path = first + "cursor=" + page["next_cursor"].get<std::string>();
  }
  ADD_FAILURE() << "no last page";
  return seen;
}

TEST(ServerLists, JobsAndLookupArePagedNewestFirst) {
  TempDir dir;
  std::string block = dir.path() + "/release";
  ServerProcess server({dir.path() + "/data", {}, {{"FAKE_GENERATE_BLOCK_FILE", block}}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  std::vector<std::string> submitted;
  for (int i = 0; i < 5; ++i) {
    auto accepted = client->Post("/generate", json{{"prompt", "paged"}, {"size", "1280x720"}}.dump(), "application/json");
    ASSERT_TRUE(accepted);
    ASSERT_EQ(accepted->status, 202);
    submitted.push_back(json::parse(accepted->body)["id"]);
  }
  std::vector<std::string> newest_first(submitted.rbegin(), submitted.rend());
  EXPECT_EQ(Walk(*client, "/jobs?limit=2&", "jobs", "id", 2), newest_first);
  EXPECT_EQ(Walk(*client, "/jobs/lookup?prompt=paged&all=true&limit=3&", "jobs", "id", 3), newest_first);
  json queued = GetJson(*client, "/jobs?status=queued&limit=10");
  EXPECT_EQ(queued["jobs"].size(), 4u);  // one runs
  for (const char* bad : {"/jobs?limit=0", "/jobs?limit=abc", "/jobs?cursor=x", "/jobs?status=bogus", "/jobs?kind=x"}) {
    auto refused = client->Get(bad);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 400) << bad;
  }
  std::ofstream(block) << "go";
}

TEST(ServerLists, VideosArePagedNewestFirst) {
  TempDir dir;
  ServerProcess server({dir.path() + "/data", {}, {}});
  ASSERT_TRUE(server.started());
  std::string results = server.data_dir() + "/results";
  auto now = fs::file_time_type::clock::now();
  std::vector<std::string> newest_first;
  for (int i = 0; i < 7; ++i) {
    std::string name = "clip-" + std::to_string(i) + ".mp4";
    std::ofstream(results + "/" + name) << i;
    fs::last_write_time(results + "/" + name, now - std::chrono::hours(i));
    newest_first.push_back(name);
  }
  auto client = server.Client();
  EXPECT_EQ(Walk(*client, "/videos?limit=3&", "videos", "filename", 3), newest_first);
  auto refused = client->Get("/videos?cursor=nonsense");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400);
}

}  // namespace
}  // namespace tessera::test
