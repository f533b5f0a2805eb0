// What only the SQLite store does: the database file, its directory, its
// journal and its own migration numbers. Every behaviour of the interfaces is in
// the conformance suite (store_conformance_test.cpp), run against SQLite too.
#include "store/sqlite_job_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "store_conformance.h"

namespace tessera::store {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class SqliteJobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "tessera-store-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = (dir_ / "data" / "tessera.db").string();
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  std::unique_ptr<SqliteJobStore> OpenStore() {
    auto store = SqliteJobStore::Open(path_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
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
};

using testing::MakeJob;

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// --- Opening -----------------------------------------------------------------

TEST_F(SqliteJobStoreTest, OpenCreatesTheFileAndItsParentDirectoryInWalMode) {
  ASSERT_FALSE(fs::exists(dir_ / "data"));
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(fs::exists(path_));
  store.reset();
  EXPECT_EQ(RawQuery("PRAGMA journal_mode"), "wal");
}

TEST_F(SqliteJobStoreTest, OpenInMemoryWorks) {
  auto store = SqliteJobStore::Open(":memory:");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE((*store)->Insert(MakeJob("a")).ok());
  EXPECT_TRUE((*store)->Get("a").ok());
}

TEST_F(SqliteJobStoreTest, OpenRefusesAnEmptyPath) {
  auto store = SqliteJobStore::Open("");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kInvalid);
}

TEST_F(SqliteJobStoreTest, AFileThatIsNotADatabaseIsAClearIoErrorAndIsLeftAlone) {
  fs::create_directories(dir_ / "data");
  std::string garbage;
  for (int i = 0; i < 200; ++i) garbage += "this is a text file, not a database. ";
  { std::ofstream(path_, std::ios::binary) << garbage; }

  auto store = SqliteJobStore::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kIo);
  EXPECT_TRUE(Contains(store.status().message(), path_)) << store.status().message();
  EXPECT_TRUE(Contains(store.status().message(), "not a database")) << store.status().message();

  std::ifstream in(path_, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  EXPECT_EQ(content.str(), garbage);
}

TEST_F(SqliteJobStoreTest, APathThatIsADirectoryIsAnIoErrorNamingIt) {
  fs::create_directories(path_);
  auto store = SqliteJobStore::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kIo);
  EXPECT_TRUE(Contains(store.status().message(), path_)) << store.status().message();
}

TEST_F(SqliteJobStoreTest, AParentThatIsAFileIsAnIoError) {
  { std::ofstream(dir_ / "data") << "a file where the directory should be"; }
  auto store = SqliteJobStore::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kIo);
  EXPECT_TRUE(Contains(store.status().message(), "create directory")) << store.status().message();
}

TEST_F(SqliteJobStoreTest, MigrationsAreRecordedOnceAcrossOpens) {
  ASSERT_NE(OpenStore(), nullptr);
  ASSERT_NE(OpenStore(), nullptr);
  auto first = OpenStore();
  auto second = OpenStore();  // two connections on one file at once
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(first->Insert(MakeJob("a")).ok());
  auto seen = second->Get("a");
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  first.reset();
  second.reset();
  const std::string latest = std::to_string(SqliteJobStore::LatestSchemaVersion());
  EXPECT_EQ(RawQuery("SELECT COUNT(*) FROM schema_migrations"), latest);
  EXPECT_EQ(RawQuery("SELECT MAX(version) FROM schema_migrations"), latest);
  EXPECT_NE(RawQuery("SELECT MIN(applied_ms) FROM schema_migrations"), "0");
}

TEST_F(SqliteJobStoreTest, ADatabaseFromANewerBuildIsRefused) {
  ASSERT_NE(OpenStore(), nullptr);
  const int future = SqliteJobStore::LatestSchemaVersion() + 1;
  RawExec("INSERT INTO schema_migrations(version, applied_ms) VALUES(" + std::to_string(future) + ", 1)");

  auto store = SqliteJobStore::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnsupported);
  EXPECT_TRUE(Contains(store.status().message(), path_)) << store.status().message();
  EXPECT_TRUE(Contains(store.status().message(), "newer")) << store.status().message();
  EXPECT_TRUE(Contains(store.status().message(), std::to_string(future))) << store.status().message();
}

}  // namespace
}  // namespace tessera::store
