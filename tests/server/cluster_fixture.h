// The shared things of a test cluster (issue 18, docs/cluster.md): a database
// of its own on the store tests' PostgreSQL, a shared directory, nodes started
// as real `tessera serve` processes, and reads of the jobs table behind the
// servers' backs.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../store/pg_test_cluster.h"
#include "../support/server_process.h"

namespace tessera::test {

// A cluster's worth of shared things: the database schema, the shared
// directory, and the file every node's fake generator appends its runs to.
class ClusterFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    // A database of its own: notification channels and advisory locks (the
    // reaper's) are per database, and other tests' servers must not hold them.
    auto schema = store::testing::PgTestSchema::CreateDatabase();
    if (!schema.ok() && schema.status().code() == StatusCode::kUnsupported) GTEST_SKIP() << "TESSERA_STORE_TESTS_PG=off";
    ASSERT_TRUE(schema.ok()) << schema.status().ToString();
    schema_ = std::move(schema).value();
    shared_ = dir_.path() + "/shared";
    invocations_ = dir_.path() + "/invocations.txt";
  }

  std::unique_ptr<ServerProcess> StartNode(const std::string& node, int lanes, std::vector<std::string> args = {},
                                           std::map<std::string, std::string> env = {}) {
    std::vector<std::string> all = {"--store", schema_->url(), "--node-id", node, "--cpu-lanes", std::to_string(lanes),
                                    "--shared-dir", shared_, "--node-lease-s", "2", "--rate-limit-per-minute", "0"};
    all.insert(all.end(), args.begin(), args.end());
    env["FAKE_GENERATE_INVOCATIONS"] = invocations_;
    env.emplace("FAKE_GENERATE_STEPS", "2");
    env.emplace("FAKE_GENERATE_STEP_SECONDS", "0.01");
    return std::make_unique<ServerProcess>(ServerOptions{dir_.path() + "/" + node, all, env});
  }

  // One value of one job's row, read behind the servers' backs.
  std::string Column(const std::string& id, const std::string& column) {
    auto row = schema_->raw().Exec("read a job", "SELECT " + column + "::text FROM jobs WHERE id = $1",
                                   store::pg::PgParams().Text(id));
    EXPECT_TRUE(row.ok()) << row.status().ToString();
    return row.ok() && row->rows() == 1 ? row->Text(0, 0) : "";
  }
  int64_t Count(const std::string& where) {
    auto row = schema_->raw().Exec("count jobs", "SELECT count(*) FROM jobs WHERE " + where);
    EXPECT_TRUE(row.ok()) << row.status().ToString();
    return row.ok() ? row->Int(0, 0) : -1;
  }
  // Waits (bounded) until `condition` holds, reading the database every 50 ms.
  bool WaitFor(const std::function<bool()>& condition, std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a poll interval, not a synchronisation
    }
    return true;
  }
  // The fake generator's runs: prompt -> times started.
  std::map<std::string, int> Invocations() {
    std::map<std::string, int> runs;
    std::istringstream lines(ReadWholeFile(invocations_));
    std::string line;
    while (std::getline(lines, line)) {
      auto space = line.find(' ');
      if (space != std::string::npos) runs[line.substr(space + 1)] += 1;
    }
    return runs;
  }

  static std::string Submit(httplib::Client& client, const std::string& prompt) {
    auto response =
        client.Post("/generate", nlohmann::json{{"prompt", prompt}, {"size", "1280x720"}}.dump(), "application/json");
    EXPECT_TRUE(response);
    if (!response) return "";
    EXPECT_EQ(response->status, 202) << response->body;
    return nlohmann::json::parse(response->body).value("id", "");
  }
  static std::string SubmitUpscale(httplib::Client& client, const std::string& image) {
    auto response = client.Post("/upscale?model=lanczos&scale=2", image, "image/png");
    EXPECT_TRUE(response);
    if (!response) return "";
    EXPECT_EQ(response->status, 202) << response->body;
    return nlohmann::json::parse(response->body).value("id", "");
  }

  TempDir dir_;
  std::unique_ptr<store::testing::PgTestSchema> schema_;
  std::string shared_;
  std::string invocations_;
};

}  // namespace tessera::test
