// What only the SQLite store does with batches: its schema migration from the
// version before batches. The batch store's behaviour is in the conformance
// suite (store_conformance_test.cpp), run against SQLite too.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "store/sqlite_job_store.h"
#include "store_conformance.h"

namespace tessera::store {
namespace {

namespace fs = std::filesystem;

using testing::BatchParts;
using testing::MakeBatch;

// A fresh database file per test.
class SqliteBatchStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "tessera-batch-store-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = (dir_ / "tessera.db").string();
    store_ = OpenStore();
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  std::unique_ptr<SqliteJobStore> OpenStore() {
    auto store = SqliteJobStore::Open(path_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }



  std::vector<BatchImageRow> List(const std::string& batch_id) {
    auto rows = store_->ListBatchImages(batch_id);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    return rows.ok() ? std::move(rows).value() : std::vector<BatchImageRow>{};
  }



  std::vector<std::string> Unsettled() {
    auto ids = store_->UnsettledBatchIds();
    EXPECT_TRUE(ids.ok()) << ids.status().ToString();
    return ids.ok() ? std::move(ids).value() : std::vector<std::string>{};
  }

  // Runs one statement on the database file directly, outside the store.
  void RawExec(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    EXPECT_EQ(rc, SQLITE_OK) << (error ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
  }

  // The first column of the first row of `sql`, as text, read directly.
  std::string RawQuery(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* statement = nullptr;
    std::string text;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    if (sqlite3_step(statement) == SQLITE_ROW && sqlite3_column_text(statement, 0) != nullptr) {
      text = reinterpret_cast<const char*>(sqlite3_column_text(statement, 0));
    }
    sqlite3_finalize(statement);
    sqlite3_close(db);
    return text;
  }



  fs::path dir_;
  std::string path_;
  std::unique_ptr<SqliteJobStore> store_;
};

// --- Migration ---------------------------------------------------------------------

// Schema version 1 exactly as released (kMigrations[0] in sqlite_job_store.cpp),
// with its schema_migrations row: a database written by the build before batches.
constexpr const char* kVersion1Schema = R"sql(
CREATE TABLE schema_migrations(version INTEGER PRIMARY KEY, applied_ms INTEGER);
CREATE TABLE jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: never reused, even after deletes
  id TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  prompt TEXT NOT NULL DEFAULT '',
  params_json TEXT NOT NULL DEFAULT '{}',
  input_path TEXT NOT NULL DEFAULT '',
  filename TEXT NOT NULL DEFAULT '',
  webhook_url TEXT NOT NULL DEFAULT '',
  client TEXT NOT NULL DEFAULT '',
  lane TEXT NOT NULL DEFAULT '',
  gpu_id INTEGER NOT NULL DEFAULT -1,
  attempts INTEGER NOT NULL DEFAULT 0,
  progress REAL NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL DEFAULT 0,
  started_ms INTEGER NOT NULL DEFAULT 0,
  finished_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_status_seq ON jobs(status, seq);
CREATE INDEX jobs_prompt ON jobs(prompt);
CREATE INDEX jobs_filename ON jobs(filename);
CREATE INDEX jobs_lane_kind_finished ON jobs(lane, kind, status, finished_ms);

CREATE TABLE webhooks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  url TEXT NOT NULL,
  job_id TEXT REFERENCES jobs(id) ON DELETE CASCADE,  -- NULL: every job
  created_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhooks_job_id ON webhooks(job_id);
INSERT INTO schema_migrations(version, applied_ms) VALUES(1, 1700000000000);
)sql";

TEST_F(SqliteBatchStoreTest, AVersion1DatabaseIsMigratedAndKeepsItsJobs) {
  store_.reset();
  fs::remove(path_);
  RawExec(kVersion1Schema);
  RawExec(
      "INSERT INTO jobs(id, kind, status, prompt, filename, lane, attempts, created_ms, started_ms, finished_ms) "
      "VALUES('old-job', 'generate', 'success', 'a lighthouse', 'old.mp4', 'cuda:0', 1, 10, 20, 30)");
  ASSERT_EQ(RawQuery("SELECT MAX(version) FROM schema_migrations"), "1");

  store_ = OpenStore();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(RawQuery("SELECT MAX(version) FROM schema_migrations"),
            std::to_string(SqliteJobStore::LatestSchemaVersion()));
  EXPECT_EQ(RawQuery("SELECT COUNT(*) FROM schema_migrations WHERE version = 2"), "1");
  EXPECT_EQ(RawQuery("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'jobs_batch_id'"), "1");

  auto job = store_->Get("old-job");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->batch_id, "");
  EXPECT_EQ(job->status, JobStatus::kSuccess);
  EXPECT_EQ(job->prompt, "a lighthouse");
  EXPECT_EQ(job->filename, "old.mp4");
  EXPECT_EQ(job->finished_ms, 30);

  // The new tables work, and seqs continue after the old job's.
  BatchParts parts = MakeBatch("b1", 2);
  auto seqs = store_->CreateBatch(parts.batch, parts.images, parts.jobs);
  ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();
  EXPECT_GT((*seqs)[0], job->seq);
  EXPECT_EQ(List("b1").size(), 2u);
  EXPECT_EQ(Unsettled(), (std::vector<std::string>{"b1"}));

  // Opening again applies nothing twice.
  store_ = OpenStore();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(RawQuery("SELECT COUNT(*) FROM schema_migrations"), std::to_string(SqliteJobStore::LatestSchemaVersion()));
}

}  // namespace
}  // namespace tessera::store
