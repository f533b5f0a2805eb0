// The PostgreSQL cluster the PostgreSQL store tests run against, started by the
// tests themselves (pg_test_cluster.sh): under ctest, once for the whole run by
// the store_pg fixture, which hands its directory over through
// TESSERA_TEST_PG_RECORD; run directly, by this test program for its own life.
//
// Each test gets its own schema (a fresh, empty database as far as the store can
// tell), so tests may run in parallel on one cluster.
#pragma once

#include <memory>
#include <string>

#include "store/pg_connection.h"
#include "util/status.h"

namespace tessera::store::testing {

// kUnsupported when TESSERA_STORE_TESTS_PG=off (the tests skip, saying why);
// kIo with the reason when no cluster could be had (the tests fail with it);
// otherwise the directory of the cluster's Unix socket.
Result<std::string> PgTestClusterSocketDir();

// A connection to the test cluster's `postgres` database as its superuser, for
// what a test does to the cluster rather than to its own schema or database.
Result<std::unique_ptr<pg::PgConnection>> PgTestAdminConnection();

// A schema of its own on the test cluster, dropped (with everything in it) when
// destroyed.
class PgTestSchema {
 public:
  static Result<std::unique_ptr<PgTestSchema>> Create();
  // A database of its own instead of a schema, for tests of what PostgreSQL
  // keeps per database rather than per schema (LISTEN/NOTIFY channels, advisory
  // locks): tests running in parallel must not hear or hold each other's.
  // Dropped, its connections ended, when destroyed.
  static Result<std::unique_ptr<PgTestSchema>> CreateDatabase();
  ~PgTestSchema();

  // A postgresql:// URL whose connections use this schema and only it, and
  // carry its name as their application_name.
  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }
  // A connection of the test's own on the schema, for reading and writing its
  // tables behind the store's back.
  pg::PgConnection& raw() { return *raw_; }

 private:
  PgTestSchema(std::string name, std::string url, std::unique_ptr<pg::PgConnection> raw, bool own_database)
      : name_(std::move(name)), url_(std::move(url)), raw_(std::move(raw)), own_database_(own_database) {}
  std::string name_;
  std::string url_;
  std::unique_ptr<pg::PgConnection> raw_;
  bool own_database_;
};

}  // namespace tessera::store::testing
