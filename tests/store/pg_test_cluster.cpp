#include "pg_test_cluster.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>

namespace tessera::store::testing {
namespace {

// Runs pg_test_cluster.sh; its output goes to this program's output.
Status RunClusterScript(const std::string& action, const std::string& record) {
  const std::string command = std::string("sh '") + TESSERA_PG_TEST_CLUSTER_SCRIPT + "' " + action + " '" + record + "'";
  int rc = std::system(command.c_str());
  if (rc != 0) return IoError(command + " failed (status " + std::to_string(rc) + "): see its output above");
  return Status::Ok();
}

Result<std::string> ReadRecord(const std::string& record) {
  std::ifstream in(record);
  std::string dir;
  if (!in || !std::getline(in, dir) || dir.empty()) {
    return IoError("no PostgreSQL test cluster recorded in " + record +
                   " (its start, the store_pg_cluster_start test, failed or did not run: see its output)");
  }
  return dir;
}

// Starts a cluster for this process when ctest's fixture did not, and stops it
// when the tests are done.
class ClusterEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* off = std::getenv("TESSERA_STORE_TESTS_PG");
    if (off != nullptr && std::string(off) == "off") {
      socket_dir_ = Status(StatusCode::kUnsupported,
                           "TESSERA_STORE_TESTS_PG=off: the PostgreSQL store tests were switched off on purpose");
      return;
    }
    if (const char* record = std::getenv("TESSERA_TEST_PG_RECORD"); record != nullptr && record[0] != '\0') {
      socket_dir_ = ReadRecord(record);
      return;
    }
    char pattern[] = "/tmp/tessera-pg-record-XXXXXX";
    int fd = ::mkstemp(pattern);
    if (fd < 0) {
      socket_dir_ = IoError("mkstemp failed");
      return;
    }
    ::close(fd);
    own_record_ = pattern;
    Status started = RunClusterScript("start", own_record_);
    socket_dir_ = started.ok() ? ReadRecord(own_record_) : Result<std::string>(started);
  }
  void TearDown() override {
    if (!own_record_.empty()) RunClusterScript("stop", own_record_);
  }

  Result<std::string> socket_dir_ = IoError("the PostgreSQL test cluster environment did not run");

 private:
  std::string own_record_;
};

ClusterEnvironment* const environment =
    static_cast<ClusterEnvironment*>(::testing::AddGlobalTestEnvironment(new ClusterEnvironment));

std::string AdminConninfo(const std::string& socket_dir) {
  return "host=" + socket_dir + " user=postgres dbname=postgres";
}

}  // namespace

Result<std::string> PgTestClusterSocketDir() { return environment->socket_dir_; }

Result<std::unique_ptr<pg::PgConnection>> PgTestAdminConnection() {
  auto dir = PgTestClusterSocketDir();
  if (!dir.ok()) return dir.status();
  return pg::PgConnection::Connect(AdminConninfo(*dir));
}

namespace {

std::string UniqueName() {
  static std::atomic<int> counter{0};
  return "test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
}

}  // namespace

Result<std::unique_ptr<PgTestSchema>> PgTestSchema::Create() {
  auto dir = PgTestClusterSocketDir();
  if (!dir.ok()) return dir.status();
  const std::string name = UniqueName();
  auto admin = pg::PgConnection::Connect(AdminConninfo(*dir));
  if (!admin.ok()) return admin.status();
  // The name is ours (digits and '_'): safe to splice, as identifiers cannot be bound.
  if (Status s = (*admin)->ExecScript("create schema " + name, "CREATE SCHEMA " + name); !s.ok()) return s;
  const std::string url = "postgresql:///postgres?host=" + *dir + "&user=postgres&application_name=" + name +
                          "&options=-csearch_path%3D" + name;
  auto raw = pg::PgConnection::Connect(url);
  if (!raw.ok()) return raw.status();
  return std::unique_ptr<PgTestSchema>(new PgTestSchema(name, url, std::move(raw).value(), false));
}

Result<std::unique_ptr<PgTestSchema>> PgTestSchema::CreateDatabase() {
  auto dir = PgTestClusterSocketDir();
  if (!dir.ok()) return dir.status();
  const std::string name = UniqueName();
  auto admin = pg::PgConnection::Connect(AdminConninfo(*dir));
  if (!admin.ok()) return admin.status();
  if (Status s = (*admin)->ExecScript("create database " + name, "CREATE DATABASE " + name); !s.ok()) return s;
  const std::string url = "postgresql:///" + name + "?host=" + *dir + "&user=postgres&application_name=" + name;
  auto raw = pg::PgConnection::Connect(url);
  if (!raw.ok()) return raw.status();
  return std::unique_ptr<PgTestSchema>(new PgTestSchema(name, url, std::move(raw).value(), true));
}

PgTestSchema::~PgTestSchema() {
  raw_.reset();
  auto dir = PgTestClusterSocketDir();
  if (!dir.ok()) return;
  auto admin = pg::PgConnection::Connect(AdminConninfo(*dir));
  if (!admin.ok()) return;
  if (own_database_) {
    // FORCE: a store or session the test still holds open is ended with it.
    (*admin)->ExecScript("drop database " + name_, "DROP DATABASE " + name_ + " WITH (FORCE)");
  } else {
    (*admin)->ExecScript("drop schema " + name_, "DROP SCHEMA " + name_ + " CASCADE");
  }
}

}  // namespace tessera::store::testing
