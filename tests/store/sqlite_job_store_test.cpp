#include "store/sqlite_job_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

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

Job MakeJob(const std::string& id, JobKind kind = JobKind::kGenerate, JobStatus status = JobStatus::kQueued) {
  Job job;
  job.id = id;
  job.kind = kind;
  job.status = status;
  job.created_ms = 1'700'000'000'000;
  return job;
}

// A job whose every field differs from its default.
Job FullJob(const std::string& id) {
  Job job;
  job.id = id;
  job.kind = JobKind::kUpscale;
  job.status = JobStatus::kRunning;
  job.seq = 999;  // ignored: the store assigns it
  job.prompt = "a \"quoted\" prompt; DROP TABLE jobs; -- ünïcödé 🎞\nsecond line";
  job.params_json = R"({"model":"realesrgan-x4plus","scale":4,"format":"png"})";
  job.input_path = "/data/inputs/in.png";
  job.filename = id + ".png";
  job.webhook_url = "https://example.test/hook?job=1&x=2";
  job.client = "token:alice";
  job.lane = "cuda:1";
  job.gpu_id = 1;
  job.attempts = 2;
  job.progress = 0.375;
  job.error = "worker restarted";
  job.created_ms = 1'700'000'000'123;
  job.started_ms = 1'700'000'001'456;
  job.finished_ms = 1'700'000'009'789;
  return job;
}

void ExpectSameJob(const Job& actual, const Job& expected) {
  EXPECT_EQ(actual.id, expected.id);
  EXPECT_EQ(actual.kind, expected.kind);
  EXPECT_EQ(actual.status, expected.status);
  EXPECT_EQ(actual.prompt, expected.prompt);
  EXPECT_EQ(actual.params_json, expected.params_json);
  EXPECT_EQ(actual.input_path, expected.input_path);
  EXPECT_EQ(actual.filename, expected.filename);
  EXPECT_EQ(actual.webhook_url, expected.webhook_url);
  EXPECT_EQ(actual.client, expected.client);
  EXPECT_EQ(actual.lane, expected.lane);
  EXPECT_EQ(actual.gpu_id, expected.gpu_id);
  EXPECT_EQ(actual.attempts, expected.attempts);
  EXPECT_EQ(actual.progress, expected.progress);
  EXPECT_EQ(actual.error, expected.error);
  EXPECT_EQ(actual.created_ms, expected.created_ms);
  EXPECT_EQ(actual.started_ms, expected.started_ms);
  EXPECT_EQ(actual.finished_ms, expected.finished_ms);
}

std::vector<std::string> Ids(const std::vector<Job>& jobs) {
  std::vector<std::string> ids;
  for (const Job& job : jobs) ids.push_back(job.id);
  return ids;
}

std::vector<std::string> ListIds(JobStore& store, const JobFilter& filter) {
  auto jobs = store.List(filter);
  EXPECT_TRUE(jobs.ok()) << jobs.status().ToString();
  return jobs.ok() ? Ids(*jobs) : std::vector<std::string>{};
}

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

TEST_F(SqliteJobStoreTest, DataSurvivesClosingAndReopening) {
  Job job = FullJob("kept");
  int64_t seq = 0;
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    auto inserted = store->Insert(job);
    ASSERT_TRUE(inserted.ok());
    seq = *inserted;
    job.progress = 0.9;
    job.status = JobStatus::kSuccess;
    ASSERT_TRUE(store->Update(job).ok());
    ASSERT_TRUE(store->AddWebhook({0, "https://hooks.test/kept", "kept", 5}).ok());
  }
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto got = store->Get("kept");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameJob(*got, job);
  EXPECT_EQ(got->seq, seq);
  auto hooks = store->WebhooksFor("kept");
  ASSERT_TRUE(hooks.ok());
  ASSERT_EQ(hooks->size(), 1u);
  EXPECT_EQ((*hooks)[0].url, "https://hooks.test/kept");
  // Numbering continues after a reopen rather than restarting.
  auto next = store->Insert(MakeJob("after"));
  ASSERT_TRUE(next.ok());
  EXPECT_GT(*next, seq);
}

// --- Insert and Get ------------------------------------------------------------

TEST_F(SqliteJobStoreTest, InsertThenGetRoundTripsEveryField) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Job job = FullJob("3f2b8c1e-0d6a-4c4b-9a51-2f0e7d9c8b10");
  auto seq = store->Insert(job);
  ASSERT_TRUE(seq.ok()) << seq.status().ToString();
  EXPECT_GT(*seq, 0);
  EXPECT_NE(*seq, job.seq);

  auto got = store->Get(job.id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameJob(*got, job);
  EXPECT_EQ(got->seq, *seq);
}

TEST_F(SqliteJobStoreTest, DefaultFieldsRoundTripToo) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Job job;
  job.id = "plain";
  ASSERT_TRUE(store->Insert(job).ok());
  auto got = store->Get("plain");
  ASSERT_TRUE(got.ok());
  ExpectSameJob(*got, job);
}

TEST_F(SqliteJobStoreTest, InsertRefusesADuplicateIdAndKeepsTheFirst) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Insert(MakeJob("dup")).ok());
  Job second = MakeJob("dup", JobKind::kUpscale, JobStatus::kError);
  auto again = store->Insert(second);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kInvalid);
  EXPECT_TRUE(Contains(again.status().message(), "insert job dup")) << again.status().message();
  auto got = store->Get("dup");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->kind, JobKind::kGenerate);
  EXPECT_EQ(got->status, JobStatus::kQueued);
}

TEST_F(SqliteJobStoreTest, InsertRefusesAnEmptyIdAndProgressOutsideZeroToOne) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Insert(MakeJob("")).status().code(), StatusCode::kInvalid);
  Job job = MakeJob("p");
  job.progress = 1.5;
  EXPECT_EQ(store->Insert(job).status().code(), StatusCode::kInvalid);
  job.progress = std::nan("");
  EXPECT_EQ(store->Insert(job).status().code(), StatusCode::kInvalid);
  EXPECT_EQ(store->Get("p").status().code(), StatusCode::kNotFound);
}

TEST_F(SqliteJobStoreTest, SeqStrictlyIncreasesInSubmissionOrderAndIsNeverReused) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  std::vector<int64_t> seqs;
  for (std::string id : {"j1", "j2", "j3"}) {
    auto seq = store->Insert(MakeJob(id));
    ASSERT_TRUE(seq.ok());
    seqs.push_back(*seq);
  }
  EXPECT_LT(seqs[0], seqs[1]);
  EXPECT_LT(seqs[1], seqs[2]);
  // Deleting the newest must not hand its number to the next job.
  ASSERT_EQ(*store->Delete({"j3"}), 1);
  auto next = store->Insert(MakeJob("j4"));
  ASSERT_TRUE(next.ok());
  EXPECT_GT(*next, seqs[2]);
  EXPECT_EQ(ListIds(*store, {}), (std::vector<std::string>{"j1", "j2", "j4"}));
}

TEST_F(SqliteJobStoreTest, GetOfAnUnknownIdIsNotFoundNamingIt) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto got = store->Get("nobody");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(got.status().message(), "get job nobody")) << got.status().message();
}

// --- Update ------------------------------------------------------------------

TEST_F(SqliteJobStoreTest, UpdateWritesEveryMutableFieldAndNothingElse) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Job original = MakeJob("u", JobKind::kGenerate, JobStatus::kQueued);
  original.created_ms = 1000;
  auto seq = store->Insert(original);
  ASSERT_TRUE(seq.ok());

  Job changed = FullJob("u");  // every field differs from `original`
  ASSERT_NE(changed.kind, original.kind);
  ASSERT_NE(changed.created_ms, original.created_ms);
  ASSERT_TRUE(store->Update(changed).ok());

  auto got = store->Get("u");
  ASSERT_TRUE(got.ok());
  Job expected = changed;
  expected.kind = original.kind;  // immutable
  expected.created_ms = original.created_ms;
  ExpectSameJob(*got, expected);
  EXPECT_EQ(got->seq, *seq);
}

TEST_F(SqliteJobStoreTest, UpdateOfAnUnknownIdIsNotFoundAndCreatesNothing) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Status status = store->Update(FullJob("ghost"));
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(status.message(), "ghost")) << status.message();
  EXPECT_EQ(store->Get("ghost").status().code(), StatusCode::kNotFound);
}

TEST_F(SqliteJobStoreTest, UpdateRefusesProgressOutsideZeroToOne) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Insert(MakeJob("u")).ok());
  Job job = MakeJob("u", JobKind::kGenerate, JobStatus::kRunning);
  job.progress = -0.1;
  EXPECT_EQ(store->Update(job).code(), StatusCode::kInvalid);
  EXPECT_EQ(store->Get("u")->status, JobStatus::kQueued);
}

TEST_F(SqliteJobStoreTest, UpdateProgressChangesOnlyProgress) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Job job = FullJob("p");
  ASSERT_TRUE(store->Insert(job).ok());
  ASSERT_TRUE(store->UpdateProgress("p", 0.625).ok());
  auto got = store->Get("p");
  ASSERT_TRUE(got.ok());
  job.progress = 0.625;
  ExpectSameJob(*got, job);

  EXPECT_TRUE(store->UpdateProgress("p", 1.0).ok());
  EXPECT_EQ(store->Get("p")->progress, 1.0);
  EXPECT_EQ(store->UpdateProgress("p", 1.01).code(), StatusCode::kInvalid);
  EXPECT_EQ(store->UpdateProgress("p", std::nan("")).code(), StatusCode::kInvalid);
  EXPECT_EQ(store->Get("p")->progress, 1.0);
}

TEST_F(SqliteJobStoreTest, UpdateProgressOfAnUnknownIdIsNotFound) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Status status = store->UpdateProgress("ghost", 0.5);
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(status.message(), "ghost")) << status.message();
}

// --- List ----------------------------------------------------------------------

class SqliteJobStoreListTest : public SqliteJobStoreTest {
 protected:
  void SetUp() override {
    SqliteJobStoreTest::SetUp();
    store_ = OpenStore();
    ASSERT_NE(store_, nullptr);
    // In submission order: a b c d e f.
    Add("a", JobKind::kGenerate, JobStatus::kSuccess, "cat", "a.mp4", 100);
    Add("b", JobKind::kUpscale, JobStatus::kQueued, "", "b.png", 0);
    Add("c", JobKind::kGenerate, JobStatus::kRunning, "dog", "c.mp4", 0);
    Add("d", JobKind::kGenerate, JobStatus::kError, "cat", "d.mp4", 300);
    Add("e", JobKind::kUpscale, JobStatus::kCanceled, "", "shared.png", 200);
    Add("f", JobKind::kGenerate, JobStatus::kQueued, "cat", "shared.png", 0);
  }

  void Add(const std::string& id, JobKind kind, JobStatus status, const std::string& prompt,
           const std::string& filename, int64_t finished_ms) {
    Job job = MakeJob(id, kind, status);
    job.prompt = prompt;
    job.filename = filename;
    job.finished_ms = finished_ms;
    ASSERT_TRUE(store_->Insert(job).ok());
  }

  std::vector<std::string> Select(const JobFilter& filter) { return ListIds(*store_, filter); }

  std::unique_ptr<SqliteJobStore> store_;
};

using Names = std::vector<std::string>;

TEST_F(SqliteJobStoreListTest, AnEmptyFilterListsEverythingInSubmissionOrder) {
  EXPECT_EQ(Select({}), (Names{"a", "b", "c", "d", "e", "f"}));
  auto jobs = store_->List({});
  ASSERT_TRUE(jobs.ok());
  for (size_t i = 1; i < jobs->size(); ++i) EXPECT_LT((*jobs)[i - 1].seq, (*jobs)[i].seq);
}

TEST_F(SqliteJobStoreListTest, NewestFirstReversesTheOrder) {
  JobFilter filter;
  filter.newest_first = true;
  EXPECT_EQ(Select(filter), (Names{"f", "e", "d", "c", "b", "a"}));
}

TEST_F(SqliteJobStoreListTest, LimitKeepsTheFirstInTheChosenOrder) {
  JobFilter filter;
  filter.limit = 2;
  EXPECT_EQ(Select(filter), (Names{"a", "b"}));
  filter.newest_first = true;
  EXPECT_EQ(Select(filter), (Names{"f", "e"}));
  filter.limit = 100;
  EXPECT_EQ(Select(filter).size(), 6u);
  filter.limit = -1;
  EXPECT_EQ(store_->List(filter).status().code(), StatusCode::kInvalid);
}

TEST_F(SqliteJobStoreListTest, FiltersByIds) {
  JobFilter filter;
  filter.ids = {"e", "a", "missing", "a"};
  EXPECT_EQ(Select(filter), (Names{"a", "e"}));
}

TEST_F(SqliteJobStoreListTest, IdsWithJsonSpecialCharactersAreMatchedExactly) {
  const std::string odd = "we\"ird\\id\n[1],";
  Add(odd, JobKind::kGenerate, JobStatus::kQueued, "", "", 0);
  JobFilter filter;
  filter.ids = {odd};
  EXPECT_EQ(Select(filter), (Names{odd}));
  filter.ids = {"we\"ird"};
  EXPECT_TRUE(Select(filter).empty());
}

TEST_F(SqliteJobStoreListTest, FiltersByStatuses) {
  JobFilter filter;
  filter.statuses = {JobStatus::kQueued};
  EXPECT_EQ(Select(filter), (Names{"b", "f"}));
  filter.statuses = {JobStatus::kError, JobStatus::kSuccess, JobStatus::kError};
  EXPECT_EQ(Select(filter), (Names{"a", "d"}));
  filter.statuses = {JobStatus::kRunning, JobStatus::kCanceled};
  EXPECT_EQ(Select(filter), (Names{"c", "e"}));
}

TEST_F(SqliteJobStoreListTest, FiltersByKind) {
  JobFilter filter;
  filter.kind = JobKind::kUpscale;
  EXPECT_EQ(Select(filter), (Names{"b", "e"}));
  filter.kind = JobKind::kGenerate;
  EXPECT_EQ(Select(filter), (Names{"a", "c", "d", "f"}));
}

TEST_F(SqliteJobStoreListTest, FiltersByExactPrompt) {
  JobFilter filter;
  filter.prompt = "cat";
  EXPECT_EQ(Select(filter), (Names{"a", "d", "f"}));
  filter.prompt = "ca";
  EXPECT_TRUE(Select(filter).empty());
  filter.prompt = "";  // present but empty: jobs without a prompt
  EXPECT_EQ(Select(filter), (Names{"b", "e"}));
}

TEST_F(SqliteJobStoreListTest, FiltersByExactFilename) {
  JobFilter filter;
  filter.filename = "shared.png";
  EXPECT_EQ(Select(filter), (Names{"e", "f"}));
  filter.filename = "%.png";  // no pattern matching
  EXPECT_TRUE(Select(filter).empty());
}

TEST_F(SqliteJobStoreListTest, FinishedBeforeSelectsOnlyFinishedJobsFinishedEarlier) {
  JobFilter filter;
  filter.finished_before_ms = 250;  // a (100) and e (200); not d (300); never unfinished ones
  EXPECT_EQ(Select(filter), (Names{"a", "e"}));
  filter.finished_before_ms = 100;  // strictly before
  EXPECT_TRUE(Select(filter).empty());
  filter.finished_before_ms = 1'000'000;
  EXPECT_EQ(Select(filter), (Names{"a", "d", "e"}));
}

TEST_F(SqliteJobStoreListTest, FiltersCombineWithAnd) {
  JobFilter filter;
  filter.kind = JobKind::kGenerate;
  filter.statuses = {JobStatus::kQueued, JobStatus::kSuccess};
  EXPECT_EQ(Select(filter), (Names{"a", "f"}));

  filter = {};
  filter.prompt = "cat";
  filter.filename = "shared.png";
  EXPECT_EQ(Select(filter), (Names{"f"}));

  filter = {};
  filter.prompt = "cat";
  filter.newest_first = true;
  filter.limit = 2;
  EXPECT_EQ(Select(filter), (Names{"f", "d"}));

  filter = {};
  filter.ids = {"a", "b", "d", "e"};
  filter.finished_before_ms = 250;
  filter.kind = JobKind::kUpscale;
  EXPECT_EQ(Select(filter), (Names{"e"}));

  filter = {};
  filter.statuses = {JobStatus::kQueued};
  filter.finished_before_ms = 1'000'000;  // queued jobs are never finished
  EXPECT_TRUE(Select(filter).empty());
}

// --- Delete and counts -------------------------------------------------------------

TEST_F(SqliteJobStoreTest, DeleteCountsWhatItRemovedAndIgnoresUnknownIds) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  for (std::string id : {"a", "b", "c"}) ASSERT_TRUE(store->Insert(MakeJob(id)).ok());
  auto deleted = store->Delete({"a", "unknown", "c", "a"});
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_EQ(*deleted, 2);
  EXPECT_EQ(ListIds(*store, {}), (std::vector<std::string>{"b"}));
  EXPECT_EQ(store->Get("a").status().code(), StatusCode::kNotFound);

  EXPECT_EQ(*store->Delete({}), 0);
  EXPECT_EQ(*store->Delete({"unknown"}), 0);
  EXPECT_EQ(ListIds(*store, {}).size(), 1u);
}

TEST_F(SqliteJobStoreTest, CountByStatusHasAllFiveStatuses) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto empty = store->CountByStatus();
  ASSERT_TRUE(empty.ok());
  ASSERT_EQ(empty->size(), 5u);
  for (const auto& [status, count] : *empty) EXPECT_EQ(count, 0) << JobStatusName(status);

  ASSERT_TRUE(store->Insert(MakeJob("q1", JobKind::kGenerate, JobStatus::kQueued)).ok());
  ASSERT_TRUE(store->Insert(MakeJob("q2", JobKind::kUpscale, JobStatus::kQueued)).ok());
  ASSERT_TRUE(store->Insert(MakeJob("r", JobKind::kGenerate, JobStatus::kRunning)).ok());
  ASSERT_TRUE(store->Insert(MakeJob("x", JobKind::kGenerate, JobStatus::kError)).ok());
  auto counts = store->CountByStatus();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->size(), 5u);
  EXPECT_EQ(counts->at(JobStatus::kQueued), 2);
  EXPECT_EQ(counts->at(JobStatus::kRunning), 1);
  EXPECT_EQ(counts->at(JobStatus::kSuccess), 0);
  EXPECT_EQ(counts->at(JobStatus::kError), 1);
  EXPECT_EQ(counts->at(JobStatus::kCanceled), 0);
}

// --- RecentDurations ---------------------------------------------------------------

TEST_F(SqliteJobStoreTest, RecentDurationsAreThisLaneAndKindsSuccessesMostRecentFirst) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  int n = 0;
  auto add = [&](const std::string& lane, JobKind kind, JobStatus status, int64_t started_ms, int64_t finished_ms) {
    Job job = MakeJob("job" + std::to_string(n++), kind, status);
    job.lane = lane;
    job.started_ms = started_ms;
    job.finished_ms = finished_ms;
    ASSERT_TRUE(store->Insert(job).ok());
  };
  // Submitted in a different order from the one they finished in.
  add("cuda:0", JobKind::kGenerate, JobStatus::kSuccess, 10'000, 70'000);   // 60 s, finished 3rd
  add("cuda:0", JobKind::kGenerate, JobStatus::kSuccess, 50'000, 140'000);  // 90 s, finished last
  add("cuda:0", JobKind::kGenerate, JobStatus::kSuccess, 1'000, 31'500);    // 30.5 s, finished 1st
  add("cuda:0", JobKind::kGenerate, JobStatus::kSuccess, 40'000, 100'000);  // 60 s, finished 4th
  add("cuda:0", JobKind::kGenerate, JobStatus::kSuccess, 2'000, 47'000);    // 45 s, finished 2nd
  // Not counted: failed or canceled, another lane, another kind, still running.
  add("cuda:0", JobKind::kGenerate, JobStatus::kError, 100'000, 200'000);
  add("cuda:0", JobKind::kGenerate, JobStatus::kCanceled, 100'000, 200'000);
  add("cuda:1", JobKind::kGenerate, JobStatus::kSuccess, 100'000, 200'000);
  add("cuda:0", JobKind::kUpscale, JobStatus::kSuccess, 100'000, 200'000);
  add("cuda:0", JobKind::kGenerate, JobStatus::kRunning, 100'000, 0);

  auto all = store->RecentDurations("cuda:0", JobKind::kGenerate, 10);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(*all, (std::vector<double>{90.0, 60.0, 60.0, 45.0, 30.5}));

  auto last_two = store->RecentDurations("cuda:0", JobKind::kGenerate, 2);
  ASSERT_TRUE(last_two.ok());
  EXPECT_EQ(*last_two, (std::vector<double>{90.0, 60.0}));

  auto other_kind = store->RecentDurations("cuda:0", JobKind::kUpscale, 10);
  ASSERT_TRUE(other_kind.ok());
  EXPECT_EQ(*other_kind, (std::vector<double>{100.0}));

  EXPECT_TRUE(store->RecentDurations("cpu:0", JobKind::kGenerate, 10)->empty());
  EXPECT_TRUE(store->RecentDurations("cuda:0", JobKind::kGenerate, 0)->empty());
  EXPECT_EQ(store->RecentDurations("cuda:0", JobKind::kGenerate, -1).status().code(), StatusCode::kInvalid);
}

TEST_F(SqliteJobStoreTest, RecentDurationsSkipRowsWithoutAValidRunTime) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Job never_started = MakeJob("never-started", JobKind::kGenerate, JobStatus::kSuccess);
  never_started.lane = "cuda:0";
  never_started.finished_ms = 50'000;
  Job backwards = MakeJob("backwards", JobKind::kGenerate, JobStatus::kSuccess);
  backwards.lane = "cuda:0";
  backwards.started_ms = 60'000;
  backwards.finished_ms = 59'000;
  ASSERT_TRUE(store->Insert(never_started).ok());
  ASSERT_TRUE(store->Insert(backwards).ok());
  auto durations = store->RecentDurations("cuda:0", JobKind::kGenerate, 10);
  ASSERT_TRUE(durations.ok());
  EXPECT_TRUE(durations->empty());
}

// --- Webhooks ----------------------------------------------------------------

TEST_F(SqliteJobStoreTest, WebhooksForAJobAreTheGlobalOnesAndItsOwn) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Insert(MakeJob("a")).ok());
  ASSERT_TRUE(store->Insert(MakeJob("b")).ok());
  auto global = store->AddWebhook({0, "https://hooks.test/all", "", 11});
  auto for_a = store->AddWebhook({0, "https://hooks.test/a", "a", 12});
  auto for_b = store->AddWebhook({0, "https://hooks.test/b", "b", 13});
  ASSERT_TRUE(global.ok()) << global.status().ToString();
  ASSERT_TRUE(for_a.ok()) << for_a.status().ToString();
  ASSERT_TRUE(for_b.ok()) << for_b.status().ToString();
  EXPECT_LT(*global, *for_a);
  EXPECT_LT(*for_a, *for_b);

  auto hooks = store->WebhooksFor("a");
  ASSERT_TRUE(hooks.ok()) << hooks.status().ToString();
  ASSERT_EQ(hooks->size(), 2u);
  EXPECT_EQ((*hooks)[0].id, *global);
  EXPECT_EQ((*hooks)[0].url, "https://hooks.test/all");
  EXPECT_EQ((*hooks)[0].job_id, "");
  EXPECT_EQ((*hooks)[0].created_ms, 11);
  EXPECT_EQ((*hooks)[1].id, *for_a);
  EXPECT_EQ((*hooks)[1].url, "https://hooks.test/a");
  EXPECT_EQ((*hooks)[1].job_id, "a");
  EXPECT_EQ((*hooks)[1].created_ms, 12);

  auto for_unknown = store->WebhooksFor("nobody");
  ASSERT_TRUE(for_unknown.ok());
  ASSERT_EQ(for_unknown->size(), 1u);
  EXPECT_EQ((*for_unknown)[0].id, *global);
}

TEST_F(SqliteJobStoreTest, WebhookAttemptsAreKeptWithTheirJobNewestFirstAndGoWithIt) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Insert(MakeJob("a")).ok());
  ASSERT_TRUE(store->Insert(MakeJob("b")).ok());
  ASSERT_TRUE(store->AddWebhookAttempt({"d1", "a", "http://h/x", "job.success", 1, false, false, "refused", 10}).ok());
  ASSERT_TRUE(store->AddWebhookAttempt({"d1", "a", "http://h/x", "job.success", 2, true, true, "", 20}).ok());
  ASSERT_TRUE(store->AddWebhookAttempt({"d2", "b", "http://h/y", "job.error", 1, true, true, "", 30}).ok());
  auto attempts = store->WebhookAttempts("a", 10);
  ASSERT_TRUE(attempts.ok()) << attempts.status().ToString();
  ASSERT_EQ(attempts->size(), 2u);
  EXPECT_EQ((*attempts)[0].attempt, 2);
  EXPECT_TRUE((*attempts)[0].delivered);
  EXPECT_TRUE((*attempts)[0].final);
  EXPECT_EQ((*attempts)[0].at_ms, 20);
  EXPECT_EQ((*attempts)[1].error, "refused");
  EXPECT_FALSE((*attempts)[1].final);
  EXPECT_EQ((*attempts)[1].delivery_id, "d1");
  EXPECT_EQ(store->WebhookAttempts("a", 1)->size(), 1u);
  EXPECT_EQ(store->WebhookAttempts("a", 0).status().code(), StatusCode::kInvalid);
  EXPECT_EQ(store->AddWebhookAttempt({"d3", "nobody", "http://h/z", "job.success", 1, true, true, "", 1}).code(),
            StatusCode::kNotFound);
  ASSERT_TRUE(store->Delete({"a"}).ok());
  EXPECT_TRUE(store->WebhookAttempts("a", 10)->empty());
  EXPECT_EQ(store->WebhookAttempts("b", 10)->size(), 1u);
}

TEST_F(SqliteJobStoreTest, AWebhookForAnUnknownJobIsNotFoundAndAnEmptyUrlInvalid) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto unknown = store->AddWebhook({0, "https://hooks.test/x", "nobody", 1});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(unknown.status().message(), "nobody")) << unknown.status().message();
  EXPECT_EQ(store->AddWebhook({0, "", "", 1}).status().code(), StatusCode::kInvalid);
  EXPECT_TRUE(store->WebhooksFor("nobody")->empty());
}

TEST_F(SqliteJobStoreTest, DeletingAJobDeletesItsOwnWebhooksButNotGlobalOnes) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Insert(MakeJob("a")).ok());
  ASSERT_TRUE(store->AddWebhook({0, "https://hooks.test/all", "", 1}).ok());
  ASSERT_TRUE(store->AddWebhook({0, "https://hooks.test/a", "a", 2}).ok());
  ASSERT_EQ(*store->Delete({"a"}), 1);
  // Reinsert the same id: the old job's registration must not come back with it.
  ASSERT_TRUE(store->Insert(MakeJob("a")).ok());
  auto hooks = store->WebhooksFor("a");
  ASSERT_TRUE(hooks.ok());
  ASSERT_EQ(hooks->size(), 1u);
  EXPECT_EQ((*hooks)[0].url, "https://hooks.test/all");
}

// --- Concurrency -------------------------------------------------------------

TEST_F(SqliteJobStoreTest, ConcurrentInsertsFromEightThreadsAllLandWithDistinctSeqs) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::vector<std::vector<int64_t>> seqs(kThreads);
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto seq = store->Insert(MakeJob("t" + std::to_string(t) + "-" + std::to_string(i)));
        if (seq.ok()) {
          seqs[t].push_back(*seq);
        } else {
          ++failures[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  std::set<int64_t> distinct;
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(failures[t], 0) << "thread " << t;
    // Within one thread, later submissions get larger numbers.
    EXPECT_TRUE(std::is_sorted(seqs[t].begin(), seqs[t].end())) << "thread " << t;
    distinct.insert(seqs[t].begin(), seqs[t].end());
  }
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kThreads * kPerThread));
  auto counts = store->CountByStatus();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->at(JobStatus::kQueued), kThreads * kPerThread);
  auto listed = store->List({});
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), static_cast<size_t>(kThreads * kPerThread));
  for (const Job& job : *listed) {
    int t = std::stoi(job.id.substr(1, job.id.find('-') - 1));
    EXPECT_TRUE(std::binary_search(seqs[t].begin(), seqs[t].end(), job.seq)) << job.id;
  }
}

}  // namespace
}  // namespace tessera::store
