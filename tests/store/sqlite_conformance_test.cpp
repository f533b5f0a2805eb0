// The store conformance suite against SQLite: each test on its own database
// file in its own temporary directory, removed afterwards.
#include <stdlib.h>

#include <filesystem>

#include "store/sqlite_job_store.h"
#include "store_conformance.h"

namespace tessera::store::testing {
namespace {

namespace fs = std::filesystem;

class SqliteBackend final : public StoreBackend {
 public:
  static Result<std::unique_ptr<StoreBackend>> Make() {
    std::string pattern = (fs::temp_directory_path() / "tessera-store-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return IoError("mkdtemp " + pattern + " failed");
    return std::unique_ptr<StoreBackend>(new SqliteBackend(pattern));
  }
  ~SqliteBackend() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  Result<std::unique_ptr<Store>> Open() override {
    auto store = SqliteJobStore::Open((dir_ / "data" / "tessera.db").string());
    if (!store.ok()) return store.status();
    return std::unique_ptr<Store>(std::move(store).value());
  }

 private:
  explicit SqliteBackend(fs::path dir) : dir_(std::move(dir)) {}
  fs::path dir_;
};

}  // namespace

TESSERA_INSTANTIATE_STORE_CONFORMANCE(Sqlite, (BackendParam{"sqlite", &SqliteBackend::Make}));

}  // namespace tessera::store::testing
