// The store conformance suite (after river's riverdrivertest): every behaviour
// of the JobStore and BatchStore interfaces, written once, run against every
// store implementation. A store joins by providing a StoreBackend and
// instantiating the suite with TESSERA_INSTANTIATE_STORE_CONFORMANCE; the tests
// themselves never name an implementation, so SQLite and PostgreSQL pass the
// very same assertions.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <ostream>
#include <memory>
#include <string>
#include <vector>

#include "store/store.h"
#include "util/status.h"

namespace tessera::store::testing {

// A queued job with a fixed creation time.
Job MakeJob(const std::string& id, JobKind kind = JobKind::kGenerate, JobStatus status = JobStatus::kQueued);

// A job whose every field differs from its default (but batch_id, and seq,
// which the store assigns).
Job FullJob(const std::string& id);
// Every field but seq (assigned by the store) and batch_id.
void ExpectSameJob(const Job& actual, const Job& expected);

// A batch with its images and their jobs, as CreateBatch takes them.
struct BatchParts {
  Batch batch;
  std::vector<BatchImage> images;
  std::vector<Job> jobs;
};
// `count` images at positions 0..count-1; ids derive from the batch id.
BatchParts MakeBatch(const std::string& id, int count);

// One test's database on one implementation. Made fresh (empty) for each test
// and dropped when destroyed.
class StoreBackend {
 public:
  virtual ~StoreBackend() = default;
  // A store on this test's database. Every call opens another store (another
  // connection) on the same database: what one wrote, the next one reads, as a
  // restarted server would.
  virtual Result<std::unique_ptr<Store>> Open() = 0;
};

// How the suite gets a backend: `name` shows in the test names. `make` answers
// kUnsupported when the implementation was switched off on purpose (the tests
// then skip, saying why); any other error fails every test with its message.
struct BackendParam {
  std::string name;
  std::function<Result<std::unique_ptr<StoreBackend>>()> make;
};
// Shown as its name (in test names too), not as bytes.
inline void PrintTo(const BackendParam& param, std::ostream* out) { *out << param.name; }

// A fresh backend per test; failpoints disarmed before and after.
class StoreConformanceTest : public ::testing::TestWithParam<BackendParam> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // A store on this test's database (nullptr, with a failure recorded, when it
  // cannot be opened).
  std::unique_ptr<Store> OpenStore();

  std::unique_ptr<StoreBackend> backend_;
};

// Most batch tests share one open store, `store_`, and these helpers.
class BatchConformanceTest : public StoreConformanceTest {
 protected:
  void SetUp() override;
  void TearDown() override;

  void Create(const BatchParts& parts);
  std::vector<BatchImageRow> List(const std::string& batch_id);
  // Sets a stored job's status (and, for finished ones, its finish time).
  void SetJobStatus(const std::string& job_id, JobStatus status, const std::string& error = "");
  std::vector<std::string> Unsettled();
  // "batches/images/jobs": how many of each the store holds, read through the
  // interface (what a crash right now would leave).
  std::string RowCounts();

  std::unique_ptr<Store> store_;
};

// The list tests' six jobs, inserted in SetUp.
class ListConformanceTest : public StoreConformanceTest {
 protected:
  void SetUp() override;
  void TearDown() override;
  void Add(const std::string& id, JobKind kind, JobStatus status, const std::string& prompt,
           const std::string& filename, int64_t finished_ms);
  std::vector<std::string> Select(const JobFilter& filter);

  std::unique_ptr<Store> store_;
};

std::string BackendName(const ::testing::TestParamInfo<BackendParam>& info);

}  // namespace tessera::store::testing

// Runs the whole suite against one backend.
#define TESSERA_INSTANTIATE_STORE_CONFORMANCE(prefix, param)                                                     \
  INSTANTIATE_TEST_SUITE_P(prefix, StoreConformanceTest, ::testing::Values(param),                             \
                           ::tessera::store::testing::BackendName);                                            \
  INSTANTIATE_TEST_SUITE_P(prefix, ListConformanceTest, ::testing::Values(param),                              \
                           ::tessera::store::testing::BackendName);                                            \
  INSTANTIATE_TEST_SUITE_P(prefix, BatchConformanceTest, ::testing::Values(param),                             \
                           ::tessera::store::testing::BackendName)
