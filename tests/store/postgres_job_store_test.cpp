// What only the PostgreSQL store does: its migrations under the advisory lock,
// the refusal of an incompatible newer schema, and connection failures. Every
// behaviour of the interfaces is in the conformance suite, run against
// PostgreSQL too (postgres_conformance_test.cpp).
#include "store/postgres_job_store.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "pg_test_cluster.h"

namespace tessera::store::testing {
namespace {

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

class PostgresJobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto schema = PgTestSchema::Create();
    if (!schema.ok() && schema.status().code() == StatusCode::kUnsupported) GTEST_SKIP() << schema.status().message();
    ASSERT_TRUE(schema.ok()) << schema.status().ToString();
    schema_ = std::move(schema).value();
  }

  std::string Query(const std::string& sql) {
    auto result = schema_->raw().Exec("test query", sql);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    return result.ok() && result->rows() > 0 ? result->Text(0, 0) : "";
  }

  std::unique_ptr<PgTestSchema> schema_;
};

TEST_F(PostgresJobStoreTest, MigrationsAreAppliedOnceAndRecordedWithTheirDescription) {
  for (int i = 0; i < 3; ++i) {
    auto store = PostgresJobStore::Open(schema_->url());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
  }
  const std::string latest = std::to_string(PostgresJobStore::LatestSchemaVersion());
  EXPECT_EQ(Query("SELECT COUNT(*) FROM schema_migrations"), latest);
  EXPECT_EQ(Query("SELECT MAX(version) FROM schema_migrations"), latest);
  EXPECT_NE(Query("SELECT description FROM schema_migrations WHERE version = 1"), "");
  EXPECT_EQ(Query("SELECT COUNT(*) FROM schema_migrations WHERE incompatible"), "0");
  EXPECT_NE(Query("SELECT MIN(applied_ms) FROM schema_migrations"), "0");
}

TEST_F(PostgresJobStoreTest, ServersStartingTogetherMigrateOnceUnderTheAdvisoryLock) {
  constexpr int kServers = 6;
  std::vector<Status> results(kServers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kServers; ++i) {
    threads.emplace_back([&, i] { results[i] = PostgresJobStore::Open(schema_->url()).status(); });
  }
  for (std::thread& thread : threads) thread.join();
  for (const Status& status : results) EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(Query("SELECT COUNT(*) FROM schema_migrations"), std::to_string(PostgresJobStore::LatestSchemaVersion()));
}

TEST_F(PostgresJobStoreTest, ANewerAdditiveSchemaIsUsedAsIs) {
  ASSERT_TRUE(PostgresJobStore::Open(schema_->url()).ok());
  const int future = PostgresJobStore::LatestSchemaVersion() + 1;
  ASSERT_TRUE(schema_->raw()
                  .ExecScript("add a step from the future",
                              "ALTER TABLE jobs ADD COLUMN from_the_future TEXT NOT NULL DEFAULT ''; "
                              "INSERT INTO schema_migrations(version, description, incompatible, applied_ms) VALUES(" +
                                  std::to_string(future) + ", 'a new column', false, 1)")
                  .ok());
  auto store = PostgresJobStore::Open(schema_->url());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Job job;
  job.id = "after-upgrade";
  ASSERT_TRUE((*store)->Insert(job).ok());
  EXPECT_EQ((*store)->Get("after-upgrade")->status, JobStatus::kQueued);
}

TEST_F(PostgresJobStoreTest, AnIncompatibleNewerSchemaIsRefusedSayingWhichStepAndWhatToDo) {
  ASSERT_TRUE(PostgresJobStore::Open(schema_->url()).ok());
  const int future = PostgresJobStore::LatestSchemaVersion() + 2;
  ASSERT_TRUE(schema_->raw()
                  .ExecScript("add a breaking step",
                              "INSERT INTO schema_migrations(version, description, incompatible, applied_ms) VALUES(" +
                                  std::to_string(future) + ", 'jobs split by tenant', true, 1)")
                  .ok());
  auto store = PostgresJobStore::Open(schema_->url());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnsupported);
  const std::string& message = store.status().message();
  EXPECT_TRUE(Contains(message, std::to_string(future))) << message;
  EXPECT_TRUE(Contains(message, "jobs split by tenant")) << message;
  EXPECT_TRUE(Contains(message, "incompatible")) << message;
  EXPECT_TRUE(Contains(message, "upgrade")) << message;
}

TEST_F(PostgresJobStoreTest, AServerThatCannotBeReachedIsUnavailableWithoutThePassword) {
  auto dir = PgTestClusterSocketDir();
  ASSERT_TRUE(dir.ok());
  auto store = PostgresJobStore::Open("postgresql://tessera:s3cret@/postgres?host=" + *dir + "/nowhere");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(store.status().message(), "nowhere")) << store.status().message();
  EXPECT_FALSE(Contains(store.status().message(), "s3cret")) << store.status().message();
}

TEST_F(PostgresJobStoreTest, AConnectionKilledBetweenCallsIsReplacedByTheNextCall) {
  auto store = PostgresJobStore::Open(schema_->url());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Job job;
  job.id = "survivor";
  ASSERT_TRUE((*store)->Insert(job).ok());
  // The store's idle connections go (a database restart, a proxy's timeout).
  auto killed = schema_->raw().Exec("kill the store's connections",
                                    "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                    "WHERE pid <> pg_backend_pid() AND application_name = $1",
                                    pg::PgParams().Text(schema_->name()));
  ASSERT_TRUE(killed.ok()) << killed.status().ToString();
  ASSERT_GE(killed->Int(0, 0), 1);
  // The first call on a dead connection may fail (kUnavailable); it never hangs, and the
  // call after it runs on a fresh connection.
  auto first = (*store)->Get("survivor");
  if (!first.ok()) {
    EXPECT_EQ(first.status().code(), StatusCode::kUnavailable) << first.status().ToString();
  }
  auto again = (*store)->Get("survivor");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->id, "survivor");
}

}  // namespace
}  // namespace tessera::store::testing
