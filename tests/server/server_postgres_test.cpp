// `tessera serve --store postgresql://...`: a real server keeping its jobs in the
// PostgreSQL test cluster (tests/store/pg_test_cluster.h), a schema of its own
// per test.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "../store/pg_test_cluster.h"
#include "../support/job_events.h"
#include "../support/server_process.h"

namespace tessera::test {
namespace {

using nlohmann::json;
using store::testing::PgTestSchema;

std::unique_ptr<PgTestSchema> MakeSchema() {
  auto schema = PgTestSchema::Create();
  if (!schema.ok() && schema.status().code() == StatusCode::kUnsupported) return nullptr;
  EXPECT_TRUE(schema.ok()) << schema.status().ToString();
  return schema.ok() ? std::move(schema).value() : nullptr;
}

std::string PostGenerate(httplib::Client& client, const std::string& prompt) {
  auto response = client.Post("/generate", json{{"prompt", prompt}, {"size", "1280x720"}}.dump(), "application/json");
  EXPECT_TRUE(response);
  if (!response) return "";
  EXPECT_EQ(response->status, 202) << response->body;
  return json::parse(response->body).value("id", "");
}

std::string StoredStatus(PgTestSchema& schema, const std::string& id) {
  auto row = schema.raw().Exec("read a job", "SELECT status FROM jobs WHERE id = $1", store::pg::PgParams().Text(id));
  EXPECT_TRUE(row.ok()) << row.status().ToString();
  return row.ok() && row->rows() == 1 ? row->Text(0, 0) : "";
}

TEST(ServerPostgres, JobsAreKeptInThePostgresqlDatabaseNotInTheDataFolder) {
  auto schema = MakeSchema();
  if (schema == nullptr && !::testing::Test::HasFailure()) GTEST_SKIP() << "TESSERA_STORE_TESTS_PG=off";
  ASSERT_NE(schema, nullptr);
  TempDir dir;
  ServerProcess server({dir.path() + "/data", {"--store", schema->url()}, {}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  auto ready = client->Get("/ready");
  ASSERT_TRUE(ready);
  json checks = json::parse(ready->body)["checks"];
  EXPECT_TRUE(checks["store"]["ok"].get<bool>()) << ready->body;
  EXPECT_NE(checks["store"]["detail"].get<std::string>().find("postgresql://"), std::string::npos) << ready->body;

  std::string id = PostGenerate(*client, "a lighthouse at dusk");
  ASSERT_FALSE(id.empty());
  json done = WaitFinished(*client, id);
  EXPECT_EQ(done["status"], "success") << done.dump();
  EXPECT_EQ(StoredStatus(*schema, id), "success");
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/data/state.db"));
}

TEST(ServerPostgres, TheStoreComesFromTesseraStoreToo) {
  auto schema = MakeSchema();
  if (schema == nullptr && !::testing::Test::HasFailure()) GTEST_SKIP() << "TESSERA_STORE_TESTS_PG=off";
  ASSERT_NE(schema, nullptr);
  TempDir dir;
  ServerProcess server({dir.path() + "/data", {}, {{"TESSERA_STORE", schema->url()}}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  std::string id = PostGenerate(*client, "from the environment");
  ASSERT_FALSE(id.empty());
  EXPECT_NE(StoredStatus(*schema, id), "");
}

TEST(ServerPostgres, AJobSurvivesKillDashNineOfTheServer) {
  auto schema = MakeSchema();
  if (schema == nullptr && !::testing::Test::HasFailure()) GTEST_SKIP() << "TESSERA_STORE_TESTS_PG=off";
  ASSERT_NE(schema, nullptr);
  TempDir dir;
  std::string data = dir.path() + "/data";
  std::string block = dir.path() + "/never";
  std::string id;
  {
    ServerProcess server({data, {"--store", schema->url()}, {{"FAKE_GENERATE_BLOCK_FILE", block}}});
    ASSERT_TRUE(server.started());
    auto client = server.Client();
    id = PostGenerate(*client, "survives a crash");
    ASSERT_FALSE(id.empty());
    ASSERT_EQ(WaitRunning(*client, id)["status"], "running");
    // The API answers from the scheduler's memory; the store's row follows
    // outside its lock. Killed once the row says running (a kill before that
    // only finds the job queued again, with one attempt).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (StoredStatus(*schema, id) != "running" && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    ASSERT_EQ(StoredStatus(*schema, id), "running");
    server.Kill();
  }
  EXPECT_EQ(StoredStatus(*schema, id), "running");
  ServerProcess restarted({data, {"--store", schema->url()}, {}});
  ASSERT_TRUE(restarted.started());
  auto client = restarted.Client();
  json done = WaitFinished(*client, id);
  EXPECT_EQ(done["status"], "success") << done.dump();
  EXPECT_EQ(done["attempts"], 2);
}

TEST(ServerPostgres, AnUnreachableDatabaseStopsTheServerAtStartSayingSo) {
  TempDir dir;
  SubprocessOptions spawn;
  spawn.argv = {TesseraBinary(), "serve", "--port", "0", "--data-dir", dir.path() + "/data", "--store",
                "postgresql://tessera:s3cret@/db?host=" + dir.path() + "&connect_timeout=5"};
  spawn.pipe_stdin = false;
  spawn.pipe_stdout = false;
  spawn.stderr_path = dir.path() + "/stderr.log";
  auto started = Subprocess::Start(spawn);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  auto status = started->Wait();
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_NE(*status, 0);
  std::string log = ReadWholeFile(dir.path() + "/stderr.log");
  EXPECT_NE(log.find("PostgreSQL"), std::string::npos) << log;
  EXPECT_EQ(log.find("s3cret"), std::string::npos) << log;
}

}  // namespace
}  // namespace tessera::test
