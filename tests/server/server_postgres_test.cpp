// `tessera serve --store postgresql://...`: a real server keeping its jobs in the
// PostgreSQL test cluster (tests/store/pg_test_cluster.h), a schema of its own
// per test.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

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

struct CommandResult {
  int exit_code = -1;
  std::string out, err;
};

// `tessera store migrate ...`, its output kept.
CommandResult RunMigrate(const std::string& dir, const std::vector<std::string>& args) {
  SubprocessOptions spawn;
  spawn.argv = {TesseraBinary(), "store", "migrate"};
  spawn.argv.insert(spawn.argv.end(), args.begin(), args.end());
  spawn.pipe_stdin = false;
  spawn.merge_stderr_into_stdout = false;
  spawn.stderr_path = dir + "/migrate-stderr.log";
  CommandResult result;
  auto started = Subprocess::Start(spawn);
  EXPECT_TRUE(started.ok()) << started.status().ToString();
  if (!started.ok()) return result;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(started->stdout_fd(), buffer, sizeof buffer)) > 0) result.out.append(buffer, static_cast<size_t>(n));
  auto status = started->Wait();
  EXPECT_TRUE(status.ok());
  if (status.ok() && WIFEXITED(*status)) result.exit_code = WEXITSTATUS(*status);
  result.err = ReadWholeFile(dir + "/migrate-stderr.log");
  return result;
}

// A server's SQLite store moved to PostgreSQL with `tessera store migrate`: what
// it finished stays finished, what it had queued runs on the new server.
TEST(ServerPostgres, StoreMigrateMovesASqliteServersJobsToAPostgresqlServer) {
  auto schema = MakeSchema();
  if (schema == nullptr && !::testing::Test::HasFailure()) GTEST_SKIP() << "TESSERA_STORE_TESTS_PG=off";
  ASSERT_NE(schema, nullptr);
  TempDir dir;
  std::string data = dir.path() + "/data";
  std::string finished, interrupted, waiting;
  {
    ServerProcess server({data, {}, {}});
    ASSERT_TRUE(server.started());
    auto client = server.Client();
    finished = PostGenerate(*client, "finished on SQLite");
    ASSERT_EQ(WaitFinished(*client, finished)["status"], "success");
  }
  {
    ServerProcess server({data, {}, {{"FAKE_GENERATE_BLOCK_FILE", dir.path() + "/never"}}});
    ASSERT_TRUE(server.started());
    auto client = server.Client();
    interrupted = PostGenerate(*client, "running when the server stopped");
    waiting = PostGenerate(*client, "queued when the server stopped");
    ASSERT_EQ(WaitRunning(*client, interrupted)["status"], "running");
    // The server holds the file: the migration refuses to start.
    CommandResult held = RunMigrate(dir.path(), {"--from", data, "--to", schema->url()});
    EXPECT_EQ(held.exit_code, 1) << held.out << held.err;
    EXPECT_NE(held.err.find("in use"), std::string::npos) << held.err;
  }  // stopped: the running job goes back to the queue

  CommandResult copied = RunMigrate(dir.path(), {"--from", data, "--to", schema->url()});
  ASSERT_EQ(copied.exit_code, 0) << copied.out << copied.err;
  EXPECT_NE(copied.out.find("jobs: 3/3 (3 copied, 0 skipped)"), std::string::npos) << copied.out;
  EXPECT_NE(copied.out.find("done:"), std::string::npos) << copied.out;
  CommandResult again = RunMigrate(dir.path(), {"--from", data, "--to", schema->url()});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("already holds 3 jobs"), std::string::npos) << again.err;
  CommandResult merged = RunMigrate(dir.path(), {"--from", data, "--to", schema->url(), "--merge"});
  EXPECT_EQ(merged.exit_code, 0) << merged.err;
  EXPECT_NE(merged.out.find("jobs: 3/3 (0 copied, 3 skipped)"), std::string::npos) << merged.out;

  ServerProcess server({data, {"--store", schema->url()}, {}});
  ASSERT_TRUE(server.started());
  auto client = server.Client();
  EXPECT_EQ(WaitFinished(*client, interrupted)["status"], "success");
  json last = WaitFinished(*client, waiting);
  EXPECT_EQ(last["status"], "success") << last.dump();
  json first = WaitFinished(*client, finished);
  EXPECT_EQ(first["status"], "success");
  EXPECT_EQ(first["attempts"], 1);
  // Its result file is still served: the rows point at the same data folder.
  auto file = client->Get(("/files/" + first["filename"].get<std::string>()).c_str());
  ASSERT_TRUE(file);
  EXPECT_EQ(file->status, 200);
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
