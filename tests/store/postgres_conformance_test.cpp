// The store conformance suite against PostgreSQL: each test on a schema of its
// own in the throwaway test cluster (pg_test_cluster.h).
#include "pg_test_cluster.h"
#include "store/postgres_job_store.h"
#include "store_conformance.h"

namespace tessera::store::testing {
namespace {

class PostgresBackend final : public StoreBackend {
 public:
  static Result<std::unique_ptr<StoreBackend>> Make() {
    auto schema = PgTestSchema::Create();
    if (!schema.ok()) return schema.status();
    return std::unique_ptr<StoreBackend>(new PostgresBackend(std::move(schema).value()));
  }

  Result<std::unique_ptr<Store>> Open() override {
    auto store = PostgresJobStore::Open(schema_->url());
    if (!store.ok()) return store.status();
    return std::unique_ptr<Store>(std::move(store).value());
  }

 private:
  explicit PostgresBackend(std::unique_ptr<PgTestSchema> schema) : schema_(std::move(schema)) {}
  std::unique_ptr<PgTestSchema> schema_;
};

}  // namespace

TESSERA_INSTANTIATE_STORE_CONFORMANCE(Postgres, (BackendParam{"postgresql", &PostgresBackend::Make}));

}  // namespace tessera::store::testing
