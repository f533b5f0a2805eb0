#include "store/store_factory.h"

#include "store/pg_connection.h"
#include "store/postgres_job_store.h"
#include "store/sqlite_job_store.h"

namespace tessera::store {

bool IsPostgresUrl(std::string_view spec) {
  return spec.rfind("postgresql://", 0) == 0 || spec.rfind("postgres://", 0) == 0;
}

Result<std::unique_ptr<Store>> OpenStore(const std::string& spec, const std::string& sqlite_path) {
  if (spec.empty()) {
    auto opened = SqliteJobStore::Open(sqlite_path);
    if (!opened.ok()) return opened.status();
    return std::unique_ptr<Store>(std::move(opened).value());
  }
  if (IsPostgresUrl(spec)) {
    auto opened = PostgresJobStore::Open(spec);
    if (!opened.ok()) return opened.status();
    return std::unique_ptr<Store>(std::move(opened).value());
  }
  return InvalidError("store: \"" + pg::RedactConninfo(spec) +
                      "\" is not a postgresql:// URL (leave it empty for the SQLite file under the data folder)");
}

std::string DescribeStore(const std::string& spec, const std::string& sqlite_path) {
  return spec.empty() ? sqlite_path : pg::RedactConninfo(spec);
}

}  // namespace tessera::store
