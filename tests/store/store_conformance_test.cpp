// The store conformance suite's tests (store_conformance.h says how a store
// joins): the job store, its lists, webhooks and history, then the batch store.
#include "store_conformance.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "util/failpoint.h"

namespace tessera::store::testing {

Job MakeJob(const std::string& id, JobKind kind, JobStatus status) {
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
  job.node = "gpu-a";
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
  EXPECT_EQ(actual.node, expected.node);
  EXPECT_EQ(actual.attempts, expected.attempts);
  EXPECT_EQ(actual.progress, expected.progress);
  EXPECT_EQ(actual.error, expected.error);
  EXPECT_EQ(actual.created_ms, expected.created_ms);
  EXPECT_EQ(actual.started_ms, expected.started_ms);
  EXPECT_EQ(actual.finished_ms, expected.finished_ms);
}

namespace {

using Names = std::vector<std::string>;

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

}  // namespace


// `count` images at positions 0..count-1; ids derive from the batch id.
BatchParts MakeBatch(const std::string& id, int count) {
  BatchParts parts;
  parts.batch.id = id;
  parts.batch.game_id = "game-" + id;
  parts.batch.total_images = count;
  parts.batch.max_retries = 2;
  parts.batch.params_json = R"({"model":"realesrgan-x4plus","scale":4,"format":"png"})";
  parts.batch.webhook_url = "https://example.test/batch?id=" + id;
  parts.batch.created_ms = 1'700'000'000'000;
  for (int i = 0; i < count; ++i) {
    const std::string suffix = "-" + std::to_string(i);
    BatchImage image;
    image.id = id + "-image" + suffix;
    image.batch_id = id;
    image.position = i;
    image.original_name = "photo" + suffix + ".jpg";
    image.input_path = "/data/games/game-" + id + "/batches/" + id + "/in" + suffix + ".jpg";
    image.job_id = id + "-job" + suffix;
    Job job;
    job.id = image.job_id;
    job.kind = JobKind::kUpscale;
    job.status = JobStatus::kQueued;
    job.params_json = parts.batch.params_json;
    job.input_path = image.input_path;
    job.filename = "out" + suffix + ".png";
    job.batch_id = id;
    job.created_ms = parts.batch.created_ms;
    parts.images.push_back(image);
    parts.jobs.push_back(job);
  }
  return parts;
}

// A new queued job for a retry of `image_id`.
BatchStore::ImageRetry MakeRetry(const std::string& batch_id, const std::string& image_id, const std::string& job_id) {
  BatchStore::ImageRetry retry;
  retry.image_id = image_id;
  retry.job.id = job_id;
  retry.job.kind = JobKind::kUpscale;
  retry.job.batch_id = batch_id;
  retry.job.filename = job_id + ".png";
  return retry;
}

std::vector<std::string> ImageIds(const std::vector<BatchImageRow>& rows) {
  std::vector<std::string> ids;
  for (const BatchImageRow& row : rows) ids.push_back(row.image.id);
  return ids;
}


// --- Fixtures ------------------------------------------------------------------

std::string BackendName(const ::testing::TestParamInfo<BackendParam>& info) { return info.param.name; }

void StoreConformanceTest::SetUp() {
  DisarmFailpoints();
  auto backend = GetParam().make();
  if (!backend.ok() && backend.status().code() == StatusCode::kUnsupported) {
    GTEST_SKIP() << backend.status().message();
  }
  ASSERT_TRUE(backend.ok()) << GetParam().name << ": " << backend.status().ToString();
  backend_ = std::move(backend).value();
}

void StoreConformanceTest::TearDown() {
  DisarmFailpoints();
  backend_.reset();
}

std::unique_ptr<Store> StoreConformanceTest::OpenStore() {
  if (backend_ == nullptr) {
    ADD_FAILURE() << "no backend";
    return nullptr;
  }
  auto store = backend_->Open();
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

void ListConformanceTest::SetUp() {
  StoreConformanceTest::SetUp();
  if (IsSkipped() || HasFatalFailure()) return;
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

void ListConformanceTest::TearDown() {
  store_.reset();
  StoreConformanceTest::TearDown();
}

void ListConformanceTest::Add(const std::string& id, JobKind kind, JobStatus status, const std::string& prompt,
                              const std::string& filename, int64_t finished_ms) {
  Job job = MakeJob(id, kind, status);
  job.prompt = prompt;
  job.filename = filename;
  job.finished_ms = finished_ms;
  ASSERT_TRUE(store_->Insert(job).ok());
}

std::vector<std::string> ListConformanceTest::Select(const JobFilter& filter) { return ListIds(*store_, filter); }

void BatchConformanceTest::SetUp() {
  StoreConformanceTest::SetUp();
  if (IsSkipped() || HasFatalFailure()) return;
  store_ = OpenStore();
  ASSERT_NE(store_, nullptr);
}

void BatchConformanceTest::TearDown() {
  store_.reset();
  StoreConformanceTest::TearDown();
}

void BatchConformanceTest::Create(const BatchParts& parts) {
  auto seqs = store_->CreateBatch(parts.batch, parts.images, parts.jobs);
  ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();
}

std::vector<BatchImageRow> BatchConformanceTest::List(const std::string& batch_id) {
  auto rows = store_->ListBatchImages(batch_id);
  EXPECT_TRUE(rows.ok()) << rows.status().ToString();
  return rows.ok() ? std::move(rows).value() : std::vector<BatchImageRow>{};
}

void BatchConformanceTest::SetJobStatus(const std::string& job_id, JobStatus status, const std::string& error) {
  auto job = store_->Get(job_id);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  job->status = status;
  job->error = error;
  if (IsFinished(status)) job->finished_ms = 1'700'000'005'000;
  ASSERT_TRUE(store_->Update(*job).ok());
}

std::vector<std::string> BatchConformanceTest::Unsettled() {
  auto ids = store_->UnsettledBatchIds();
  EXPECT_TRUE(ids.ok()) << ids.status().ToString();
  return ids.ok() ? std::move(ids).value() : std::vector<std::string>{};
}

std::string BatchConformanceTest::RowCounts() {
  // A fresh store: what another connection (another server) sees committed.
  std::unique_ptr<Store> reader = OpenStore();
  if (reader == nullptr) return "no store";
  auto batches = reader->ListBatches("", 0, 1'000'000);
  auto jobs = reader->List({});
  if (!batches.ok() || !jobs.ok()) return "unreadable";
  size_t images = 0;
  for (const Batch& batch : *batches) {
    auto rows = reader->ListBatchImages(batch.id);
    if (!rows.ok()) return "unreadable";
    images += rows->size();
  }
  return std::to_string(batches->size()) + "/" + std::to_string(images) + "/" + std::to_string(jobs->size());
}

// --- Job store -------------------------------------------------------------------

TEST_P(StoreConformanceTest, DataSurvivesClosingAndReopening) {
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

TEST_P(StoreConformanceTest, InsertThenGetRoundTripsEveryField) {
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

TEST_P(StoreConformanceTest, DefaultFieldsRoundTripToo) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Job job;
  job.id = "plain";
  ASSERT_TRUE(store->Insert(job).ok());
  auto got = store->Get("plain");
  ASSERT_TRUE(got.ok());
  ExpectSameJob(*got, job);
}

TEST_P(StoreConformanceTest, InsertRefusesADuplicateIdAndKeepsTheFirst) {
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

TEST_P(StoreConformanceTest, InsertRefusesAnEmptyIdAndProgressOutsideZeroToOne) {
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

TEST_P(StoreConformanceTest, SeqStrictlyIncreasesInSubmissionOrderAndIsNeverReused) {
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

TEST_P(StoreConformanceTest, GetOfAnUnknownIdIsNotFoundNamingIt) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto got = store->Get("nobody");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(got.status().message(), "get job nobody")) << got.status().message();
}

// --- Update ------------------------------------------------------------------

TEST_P(StoreConformanceTest, UpdateWritesEveryMutableFieldAndNothingElse) {
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

TEST_P(StoreConformanceTest, ANodeRoundTripsThroughInsertUpdateGetAndList) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Job placed = MakeJob("placed", JobKind::kGenerate, JobStatus::kRunning);
  placed.node = "gpu-a";
  ASSERT_TRUE(store->Insert(placed).ok());
  ASSERT_TRUE(store->Insert(MakeJob("single")).ok());
  EXPECT_EQ(store->Get("placed")->node, "gpu-a");
  EXPECT_EQ(store->Get("single")->node, "");

  // Taken back and run elsewhere (Update), and placed (UpdateAll).
  placed.node = "gpu-b 'second' \"node\"";
  ASSERT_TRUE(store->Update(placed).ok());
  Job single = MakeJob("single", JobKind::kGenerate, JobStatus::kRunning);
  single.node = "gpu-c";
  ASSERT_TRUE(store->UpdateAll({single}).ok());
  auto listed = store->List({});
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].node, "gpu-b 'second' \"node\"");
  EXPECT_EQ((*listed)[1].node, "gpu-c");
  // A progress update leaves it alone; an Update can clear it.
  ASSERT_TRUE(store->UpdateProgress("placed", 0.5).ok());
  EXPECT_EQ(store->Get("placed")->node, "gpu-b 'second' \"node\"");
  single.node = "";
  ASSERT_TRUE(store->Update(single).ok());
  EXPECT_EQ(store->Get("single")->node, "");
}

TEST_P(StoreConformanceTest, UpdateOfAnUnknownIdIsNotFoundAndCreatesNothing) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Status status = store->Update(FullJob("ghost"));
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(status.message(), "ghost")) << status.message();
  EXPECT_EQ(store->Get("ghost").status().code(), StatusCode::kNotFound);
}

TEST_P(StoreConformanceTest, UpdateRefusesProgressOutsideZeroToOne) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Insert(MakeJob("u")).ok());
  Job job = MakeJob("u", JobKind::kGenerate, JobStatus::kRunning);
  job.progress = -0.1;
  EXPECT_EQ(store->Update(job).code(), StatusCode::kInvalid);
  EXPECT_EQ(store->Get("u")->status, JobStatus::kQueued);
}

TEST_P(StoreConformanceTest, UpdateProgressChangesOnlyProgress) {
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

TEST_P(StoreConformanceTest, UpdateProgressOfAnUnknownIdIsNotFound) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Status status = store->UpdateProgress("ghost", 0.5);
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(status.message(), "ghost")) << status.message();
}

TEST_P(ListConformanceTest, SearchMatchesIdPromptOrFilenameIgnoringCaseAndTakesWildcardsLiterally) {
  JobFilter filter;
  filter.search = "CA";  // prompts "cat"
  EXPECT_EQ(Select(filter), (Names{"a", "d", "f"}));
  filter.search = "SHARED";  // file names
  EXPECT_EQ(Select(filter), (Names{"e", "f"}));
  filter.search = "c";  // id "c", prompts "cat", "c.mp4"
  EXPECT_EQ(Select(filter), (Names{"a", "c", "d", "f"}));
  filter.search = "%";  // no pattern matching: no job has a '%' anywhere
  EXPECT_TRUE(Select(filter).empty());
  filter.search = "_";
  EXPECT_TRUE(Select(filter).empty());
  Add("50%_off", JobKind::kGenerate, JobStatus::kQueued, "", "", 0);
  filter.search = "0%_";
  EXPECT_EQ(Select(filter), (Names{"50%_off"}));
  filter.search = "cat";
  filter.statuses = {JobStatus::kQueued};
  EXPECT_EQ(Select(filter), (Names{"f"}));
}

TEST_P(ListConformanceTest, AfterSeqPagesInEitherDirection) {
  auto all = store_->List({});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 6u);
  JobFilter filter;
  filter.after_seq = (*all)[1].seq;  // after b
  filter.limit = 2;
  EXPECT_EQ(Select(filter), (Names{"c", "d"}));
  filter.after_seq = (*all)[3].seq;
  EXPECT_EQ(Select(filter), (Names{"e", "f"}));
  filter.after_seq = (*all)[5].seq;
  EXPECT_TRUE(Select(filter).empty());
  filter.newest_first = true;  // below d, newest first
  filter.after_seq = (*all)[3].seq;
  EXPECT_EQ(Select(filter), (Names{"c", "b"}));
  filter.after_seq = (*all)[0].seq;
  EXPECT_TRUE(Select(filter).empty());
}

TEST_P(ListConformanceTest, AListOfManyIdsIsOneCall) {
  JobFilter filter;
  for (int i = 0; i < 2000; ++i) filter.ids.push_back("missing-" + std::to_string(i));
  filter.ids.push_back("d");
  filter.ids.push_back("b");
  EXPECT_EQ(Select(filter), (Names{"b", "d"}));
}

// --- Delete and counts -------------------------------------------------------------

TEST_P(StoreConformanceTest, DeleteCountsWhatItRemovedAndIgnoresUnknownIds) {
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

TEST_P(StoreConformanceTest, CountByStatusHasAllFiveStatuses) {
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

TEST_P(StoreConformanceTest, RecentDurationsAreThisLaneAndKindsSuccessesMostRecentFirst) {
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

TEST_P(StoreConformanceTest, RecentDurationsSkipRowsWithoutAValidRunTime) {
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

TEST_P(StoreConformanceTest, WebhooksForAJobAreTheGlobalOnesAndItsOwn) {
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

TEST_P(StoreConformanceTest, WebhookAttemptsAreKeptWithTheirJobNewestFirstAndGoWithIt) {
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

TEST_P(StoreConformanceTest, AWebhookForAnUnknownJobIsNotFoundAndAnEmptyUrlInvalid) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto unknown = store->AddWebhook({0, "https://hooks.test/x", "nobody", 1});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(unknown.status().message(), "nobody")) << unknown.status().message();
  EXPECT_EQ(store->AddWebhook({0, "", "", 1}).status().code(), StatusCode::kInvalid);
  EXPECT_TRUE(store->WebhooksFor("nobody")->empty());
}

TEST_P(StoreConformanceTest, DeletingAJobDeletesItsOwnWebhooksButNotGlobalOnes) {
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

TEST_P(StoreConformanceTest, ConcurrentInsertsFromEightThreadsAllLandWithDistinctSeqs) {
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


// --- List ------------------------------------------------------------------------

TEST_P(ListConformanceTest, AnEmptyFilterListsEverythingInSubmissionOrder) {
  EXPECT_EQ(Select({}), (Names{"a", "b", "c", "d", "e", "f"}));
  auto jobs = store_->List({});
  ASSERT_TRUE(jobs.ok());
  for (size_t i = 1; i < jobs->size(); ++i) EXPECT_LT((*jobs)[i - 1].seq, (*jobs)[i].seq);
}

TEST_P(ListConformanceTest, NewestFirstReversesTheOrder) {
  JobFilter filter;
  filter.newest_first = true;
  EXPECT_EQ(Select(filter), (Names{"f", "e", "d", "c", "b", "a"}));
}

TEST_P(ListConformanceTest, LimitKeepsTheFirstInTheChosenOrder) {
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

TEST_P(ListConformanceTest, FiltersByIds) {
  JobFilter filter;
  filter.ids = {"e", "a", "missing", "a"};
  EXPECT_EQ(Select(filter), (Names{"a", "e"}));
}

TEST_P(ListConformanceTest, IdsWithJsonSpecialCharactersAreMatchedExactly) {
  const std::string odd = "we\"ird\\id\n[1],";
  Add(odd, JobKind::kGenerate, JobStatus::kQueued, "", "", 0);
  JobFilter filter;
  filter.ids = {odd};
  EXPECT_EQ(Select(filter), (Names{odd}));
  filter.ids = {"we\"ird"};
  EXPECT_TRUE(Select(filter).empty());
}

TEST_P(ListConformanceTest, FiltersByStatuses) {
  JobFilter filter;
  filter.statuses = {JobStatus::kQueued};
  EXPECT_EQ(Select(filter), (Names{"b", "f"}));
  filter.statuses = {JobStatus::kError, JobStatus::kSuccess, JobStatus::kError};
  EXPECT_EQ(Select(filter), (Names{"a", "d"}));
  filter.statuses = {JobStatus::kRunning, JobStatus::kCanceled};
  EXPECT_EQ(Select(filter), (Names{"c", "e"}));
}

TEST_P(ListConformanceTest, FiltersByKind) {
  JobFilter filter;
  filter.kind = JobKind::kUpscale;
  EXPECT_EQ(Select(filter), (Names{"b", "e"}));
  filter.kind = JobKind::kGenerate;
  EXPECT_EQ(Select(filter), (Names{"a", "c", "d", "f"}));
}

TEST_P(ListConformanceTest, FiltersByExactPrompt) {
  JobFilter filter;
  filter.prompt = "cat";
  EXPECT_EQ(Select(filter), (Names{"a", "d", "f"}));
  filter.prompt = "ca";
  EXPECT_TRUE(Select(filter).empty());
  filter.prompt = "";  // present but empty: jobs without a prompt
  EXPECT_EQ(Select(filter), (Names{"b", "e"}));
}

TEST_P(ListConformanceTest, FiltersByExactFilename) {
  JobFilter filter;
  filter.filename = "shared.png";
  EXPECT_EQ(Select(filter), (Names{"e", "f"}));
  filter.filename = "%.png";  // no pattern matching
  EXPECT_TRUE(Select(filter).empty());
}

TEST_P(ListConformanceTest, FinishedBeforeSelectsOnlyFinishedJobsFinishedEarlier) {
  JobFilter filter;
  filter.finished_before_ms = 250;  // a (100) and e (200); not d (300); never unfinished ones
  EXPECT_EQ(Select(filter), (Names{"a", "e"}));
  filter.finished_before_ms = 100;  // strictly before
  EXPECT_TRUE(Select(filter).empty());
  filter.finished_before_ms = 1'000'000;
  EXPECT_EQ(Select(filter), (Names{"a", "d", "e"}));
}

TEST_P(ListConformanceTest, FiltersCombineWithAnd) {
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

// --- Jobs carry their batch ---------------------------------------------------

TEST_P(BatchConformanceTest, AJobsBatchIdRoundTripsThroughInsertGetUpdateAndList) {
  Job job;
  job.id = "job-1";
  job.kind = JobKind::kUpscale;
  job.batch_id = "batch-a";
  ASSERT_TRUE(store_->Insert(job).ok());
  Job plain;
  plain.id = "job-2";
  ASSERT_TRUE(store_->Insert(plain).ok());

  auto read = store_->Get("job-1");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->batch_id, "batch-a");
  EXPECT_EQ(store_->Get("job-2")->batch_id, "");

  read->batch_id = "batch-b";
  ASSERT_TRUE(store_->Update(*read).ok());
  auto listed = store_->List({});
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].batch_id, "batch-b");
  EXPECT_EQ((*listed)[1].batch_id, "");
}

// --- CreateBatch and reading it back ------------------------------------------

TEST_P(BatchConformanceTest, ACreatedBatchReadsBackWithEveryFieldEvenAfterReopening) {
  BatchParts parts = MakeBatch("b1", 2);
  parts.batch.game_id = "game \"quoted\" ünïcödé";
  parts.batch.notified_ms = 0;
  Create(parts);

  for (int pass = 0; pass < 2; ++pass) {
    auto batch = store_->GetBatch("b1");
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    EXPECT_EQ(batch->id, "b1");
    EXPECT_EQ(batch->game_id, parts.batch.game_id);
    EXPECT_EQ(batch->total_images, 2);
    EXPECT_EQ(batch->max_retries, 2);
    EXPECT_EQ(batch->params_json, parts.batch.params_json);
    EXPECT_EQ(batch->webhook_url, parts.batch.webhook_url);
    EXPECT_EQ(batch->created_ms, parts.batch.created_ms);
    EXPECT_EQ(batch->notified_ms, 0);
    store_ = OpenStore();
    ASSERT_NE(store_, nullptr);
  }
  auto missing = store_->GetBatch("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST_P(BatchConformanceTest, CreateBatchInsertsTheJobsAndReturnsTheirSeqsInOrder) {
  Job before;
  before.id = "earlier";
  auto before_seq = store_->Insert(before);
  ASSERT_TRUE(before_seq.ok());

  BatchParts parts = MakeBatch("b1", 3);
  auto seqs = store_->CreateBatch(parts.batch, parts.images, parts.jobs);
  ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();
  ASSERT_EQ(seqs->size(), 3u);
  EXPECT_GT((*seqs)[0], *before_seq);
  EXPECT_LT((*seqs)[0], (*seqs)[1]);
  EXPECT_LT((*seqs)[1], (*seqs)[2]);
  for (size_t i = 0; i < 3; ++i) {
    auto job = store_->Get(parts.jobs[i].id);
    ASSERT_TRUE(job.ok()) << job.status().ToString();
    EXPECT_EQ(job->seq, (*seqs)[i]);
    EXPECT_EQ(job->batch_id, "b1");
    EXPECT_EQ(job->status, JobStatus::kQueued);
    EXPECT_EQ(job->input_path, parts.images[i].input_path);
  }
}

TEST_P(BatchConformanceTest, ImagesListInUploadOrderWithTheirJobsJoined) {
  BatchParts parts = MakeBatch("b1", 4);
  // Handed over out of order: the listing follows positions, not insertion.
  std::swap(parts.images[0], parts.images[3]);
  std::swap(parts.jobs[0], parts.jobs[3]);
  parts.images[1].attempts = 2;
  parts.images[2].retry_at_ms = 1'700'000'009'000;
  Create(parts);
  Create(MakeBatch("other", 2));  // not listed with b1

  auto success = store_->Get("b1-job-1");
  ASSERT_TRUE(success.ok());
  success->status = JobStatus::kSuccess;
  success->filename = "result-1.png";
  success->started_ms = 1'700'000'001'000;
  success->finished_ms = 1'700'000'002'500;
  ASSERT_TRUE(store_->Update(*success).ok());
  SetJobStatus("b1-job-2", JobStatus::kError, "bad image: not a PNG or JPEG");
  SetJobStatus("b1-job-3", JobStatus::kRunning);

  std::vector<BatchImageRow> rows = List("b1");
  ASSERT_EQ(ImageIds(rows), (std::vector<std::string>{"b1-image-0", "b1-image-1", "b1-image-2", "b1-image-3"}));

  EXPECT_EQ(rows[0].image.batch_id, "b1");
  EXPECT_EQ(rows[0].image.position, 0);
  EXPECT_EQ(rows[0].image.original_name, "photo-0.jpg");
  EXPECT_EQ(rows[0].image.input_path, parts.images[3].input_path);
  EXPECT_EQ(rows[0].image.job_id, "b1-job-0");
  EXPECT_EQ(rows[0].image.attempts, 1);
  EXPECT_EQ(rows[0].image.retry_at_ms, 0);
  EXPECT_EQ(rows[0].job_status, JobStatus::kQueued);
  EXPECT_EQ(rows[0].job_error, "");
  EXPECT_EQ(rows[0].result_filename, "out-0.png");

  EXPECT_EQ(rows[1].image.attempts, 2);
  EXPECT_EQ(rows[1].job_status, JobStatus::kSuccess);
  EXPECT_EQ(rows[1].result_filename, "result-1.png");
  EXPECT_EQ(rows[1].job_started_ms, 1'700'000'001'000);
  EXPECT_EQ(rows[1].job_finished_ms, 1'700'000'002'500);

  EXPECT_EQ(rows[2].image.retry_at_ms, 1'700'000'009'000);
  EXPECT_EQ(rows[2].job_status, JobStatus::kError);
  EXPECT_EQ(rows[2].job_error, "bad image: not a PNG or JPEG");
  EXPECT_EQ(rows[2].job_finished_ms, 1'700'000'005'000);

  EXPECT_EQ(rows[3].job_status, JobStatus::kRunning);
}

TEST_P(BatchConformanceTest, AnEmptyBatchListsNoImagesAndAnUnknownOneIsNotFound) {
  Create(MakeBatch("empty", 0));
  auto rows = store_->ListBatchImages("empty");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_TRUE(rows->empty());

  auto missing = store_->ListBatchImages("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST_P(BatchConformanceTest, AnImageWhoseJobWasDeletedReadsAsFailedAndSettled) {
  Create(MakeBatch("b1", 2));
  SetJobStatus("b1-job-0", JobStatus::kSuccess);
  auto deleted = store_->Delete({"b1-job-0"});
  ASSERT_TRUE(deleted.ok());
  ASSERT_EQ(*deleted, 1);

  std::vector<BatchImageRow> rows = List("b1");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].image.job_id, "b1-job-0");
  EXPECT_EQ(rows[0].job_status, JobStatus::kError);
  EXPECT_TRUE(Contains(rows[0].job_error, "b1-job-0")) << rows[0].job_error;
  EXPECT_TRUE(Contains(rows[0].job_error, "deleted")) << rows[0].job_error;
  EXPECT_EQ(rows[1].job_status, JobStatus::kQueued);

  SetJobStatus("b1-job-1", JobStatus::kSuccess);
  EXPECT_TRUE(Unsettled().empty());
}

// --- CreateBatch is all or nothing --------------------------------------------

TEST_P(BatchConformanceTest, AFailureBeforeCommitLeavesNoBatchNoImageAndNoJob) {
  BatchParts parts = MakeBatch("b1", 3);
  ASSERT_TRUE(ArmFailpoints("store.create_batch").ok());
  auto seqs = store_->CreateBatch(parts.batch, parts.images, parts.jobs);
  ASSERT_FALSE(seqs.ok());
  EXPECT_EQ(seqs.status().code(), StatusCode::kIo);
  EXPECT_TRUE(Contains(seqs.status().message(), "injected failure")) << seqs.status().message();
  EXPECT_TRUE(Contains(seqs.status().message(), "b1")) << seqs.status().message();

  EXPECT_EQ(RowCounts(), "0/0/0");
  EXPECT_EQ(store_->GetBatch("b1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Get("b1-job-0").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ImageForJob("b1-job-0").status().code(), StatusCode::kNotFound);

  // Disarmed, the very same batch goes in: nothing of the failed try was left to
  // collide with.
  DisarmFailpoints();
  Create(parts);
  EXPECT_EQ(RowCounts(), "1/3/3");
}

TEST_P(BatchConformanceTest, AFailureOfOneCreateLeavesEarlierBatchesWhole) {
  Create(MakeBatch("first", 2));
  ASSERT_TRUE(ArmFailpoints("store.create_batch@2").ok());
  Create(MakeBatch("second", 2));  // the failpoint's first hit: passes
  BatchParts third = MakeBatch("third", 2);
  auto failed = store_->CreateBatch(third.batch, third.images, third.jobs);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kIo);

  EXPECT_EQ(RowCounts(), "2/4/4");
  EXPECT_EQ(List("first").size(), 2u);
  EXPECT_EQ(List("second").size(), 2u);
  EXPECT_EQ(store_->GetBatch("third").status().code(), StatusCode::kNotFound);
  // @2 fired once; the third hit passes.
  Create(third);
  EXPECT_EQ(RowCounts(), "3/6/6");
}

TEST_P(BatchConformanceTest, ADuplicateImageIdWritesNothing) {
  BatchParts parts = MakeBatch("b1", 3);
  parts.images[2].id = parts.images[0].id;
  auto seqs = store_->CreateBatch(parts.batch, parts.images, parts.jobs);
  ASSERT_FALSE(seqs.ok());
  EXPECT_EQ(seqs.status().code(), StatusCode::kInvalid);
  EXPECT_TRUE(Contains(seqs.status().message(), parts.images[0].id)) << seqs.status().message();
  EXPECT_EQ(RowCounts(), "0/0/0");
  // The store's own connection sees nothing either, and takes the batch once the
  // ids are fixed.
  EXPECT_EQ(store_->GetBatch("b1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Get("b1-job-0").status().code(), StatusCode::kNotFound);
  parts.images[2].id = "b1-image-2";
  Create(parts);
  EXPECT_EQ(RowCounts(), "1/3/3");
}

TEST_P(BatchConformanceTest, AnImageIdOfAnotherBatchWritesNothingAndLeavesThatBatchAlone) {
  Create(MakeBatch("first", 2));
  BatchParts second = MakeBatch("second", 2);
  second.images[1].id = "first-image-0";
  auto seqs = store_->CreateBatch(second.batch, second.images, second.jobs);
  ASSERT_FALSE(seqs.ok());
  EXPECT_EQ(seqs.status().code(), StatusCode::kInvalid);
  EXPECT_EQ(RowCounts(), "1/2/2");
  EXPECT_EQ(store_->GetBatch("second").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Get("second-job-0").status().code(), StatusCode::kNotFound);
  std::vector<BatchImageRow> rows = List("first");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].image.job_id, "first-job-0");
  EXPECT_EQ(rows[0].image.batch_id, "first");
}

TEST_P(BatchConformanceTest, AnExistingJobIdOrBatchIdWritesNothing) {
  Job existing;
  existing.id = "b1-job-2";
  ASSERT_TRUE(store_->Insert(existing).ok());
  BatchParts parts = MakeBatch("b1", 3);
  auto seqs = store_->CreateBatch(parts.batch, parts.images, parts.jobs);
  ASSERT_FALSE(seqs.ok());
  EXPECT_EQ(seqs.status().code(), StatusCode::kInvalid);
  EXPECT_TRUE(Contains(seqs.status().message(), "b1-job-2")) << seqs.status().message();
  EXPECT_EQ(RowCounts(), "0/0/1");

  Create(MakeBatch("b2", 1));
  BatchParts again = MakeBatch("b2", 1);
  again.images[0].id = "fresh-image";
  again.images[0].job_id = again.jobs[0].id = "fresh-job";
  auto duplicate = store_->CreateBatch(again.batch, again.images, again.jobs);
  ASSERT_FALSE(duplicate.ok());
  EXPECT_EQ(duplicate.status().code(), StatusCode::kInvalid);
  EXPECT_EQ(RowCounts(), "1/1/2");
}

TEST_P(BatchConformanceTest, InconsistentArgumentsAreRefusedBeforeAnythingIsWritten) {
  auto expect_refused = [&](const BatchParts& parts, const std::string& why) {
    auto seqs = store_->CreateBatch(parts.batch, parts.images, parts.jobs);
    ASSERT_FALSE(seqs.ok()) << why;
    EXPECT_EQ(seqs.status().code(), StatusCode::kInvalid) << why << ": " << seqs.status().ToString();
    EXPECT_EQ(RowCounts(), "0/0/0") << why;
  };
  BatchParts parts = MakeBatch("", 1);
  expect_refused(parts, "empty batch id");
  parts = MakeBatch("b1", 2);
  parts.jobs.pop_back();
  parts.batch.total_images = 2;
  expect_refused(parts, "fewer jobs than images");
  parts = MakeBatch("b1", 2);
  parts.batch.total_images = 3;
  expect_refused(parts, "total_images not the image count");
  parts = MakeBatch("b1", 2);
  parts.images[1].job_id = parts.jobs[0].id;
  expect_refused(parts, "an image naming another image's job");
  parts = MakeBatch("b1", 2);
  parts.images[0].batch_id = "b2";
  expect_refused(parts, "an image of another batch");
  parts = MakeBatch("b1", 2);
  parts.jobs[1].batch_id = "";
  expect_refused(parts, "a job of no batch");
  parts = MakeBatch("b1", 2);
  parts.images[0].id = "";
  expect_refused(parts, "an empty image id");
  parts = MakeBatch("b1", 3);
  parts.images[2].position = 0;
  expect_refused(parts, "two images at one position");
  parts = MakeBatch("b1", 2);
  parts.jobs[1].progress = 2.0;
  expect_refused(parts, "a job's progress outside [0, 1]");
}

// --- RetryImages ----------------------------------------------------------------

TEST_P(BatchConformanceTest, ARetryInsertsANewJobAndPointsTheImageAtIt) {
  BatchParts parts = MakeBatch("b1", 2);
  auto first_seqs = store_->CreateBatch(parts.batch, parts.images, parts.jobs);
  ASSERT_TRUE(first_seqs.ok());
  SetJobStatus("b1-job-0", JobStatus::kError, "worker crashed");
  ASSERT_TRUE(store_->ScheduleImageRetry("b1-image-0", 1'700'000'100'000).ok());

  auto seqs = store_->RetryImages({MakeRetry("b1", "b1-image-0", "b1-job-0-retry1")});
  ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();
  ASSERT_EQ(seqs->size(), 1u);
  EXPECT_GT((*seqs)[0], (*first_seqs)[1]);

  auto job = store_->Get("b1-job-0-retry1");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->seq, (*seqs)[0]);
  EXPECT_EQ(job->status, JobStatus::kQueued);
  EXPECT_EQ(job->batch_id, "b1");

  std::vector<BatchImageRow> rows = List("b1");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].image.job_id, "b1-job-0-retry1");
  EXPECT_EQ(rows[0].image.attempts, 2);
  EXPECT_EQ(rows[0].image.retry_at_ms, 0);
  EXPECT_EQ(rows[0].job_status, JobStatus::kQueued);
  EXPECT_EQ(rows[0].job_error, "");
  EXPECT_EQ(rows[0].result_filename, "b1-job-0-retry1.png");
  // The other image is untouched, and the failed attempt stays as history.
  EXPECT_EQ(rows[1].image.job_id, "b1-job-1");
  EXPECT_EQ(rows[1].image.attempts, 1);
  auto old_job = store_->Get("b1-job-0");
  ASSERT_TRUE(old_job.ok());
  EXPECT_EQ(old_job->error, "worker crashed");
  EXPECT_EQ(store_->NextImageRetryMs().value(), 0);

  // A second retry adds one more.
  ASSERT_TRUE(store_->RetryImages({MakeRetry("b1", "b1-image-0", "b1-job-0-retry2")}).ok());
  EXPECT_EQ(List("b1")[0].image.attempts, 3);
}

TEST_P(BatchConformanceTest, ARetryOfAJobAlreadyReplacedMakesNoSecondJob) {
  Create(MakeBatch("b1", 2));
  SetJobStatus("b1-job-0", JobStatus::kError, "worker crashed");
  // Two servers saw the same failure and retry the same image.
  auto first_retry = MakeRetry("b1", "b1-image-0", "from-server-a");
  first_retry.replaces_job_id = "b1-job-0";
  auto second_retry = MakeRetry("b1", "b1-image-0", "from-server-b");
  second_retry.replaces_job_id = "b1-job-0";
  auto first = store_->RetryImages({first_retry});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_GT((*first)[0], 0);
  auto second = store_->RetryImages({second_retry, MakeRetry("b1", "b1-image-1", "unconditional")});
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  ASSERT_EQ(second->size(), 2u);
  EXPECT_EQ((*second)[0], 0);
  EXPECT_GT((*second)[1], (*first)[0]);
  EXPECT_EQ(store_->Get("from-server-b").status().code(), StatusCode::kNotFound);
  std::vector<BatchImageRow> rows = List("b1");
  EXPECT_EQ(rows[0].image.job_id, "from-server-a");
  EXPECT_EQ(rows[0].image.attempts, 2);
  EXPECT_EQ(rows[1].image.job_id, "unconditional");
}

TEST_P(BatchConformanceTest, RetryingSeveralImagesAtOnceReturnsTheirSeqsInOrder) {
  Create(MakeBatch("b1", 3));
  auto seqs = store_->RetryImages({MakeRetry("b1", "b1-image-2", "r2"), MakeRetry("b1", "b1-image-0", "r0")});
  ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();
  ASSERT_EQ(seqs->size(), 2u);
  EXPECT_EQ(store_->Get("r2")->seq, (*seqs)[0]);
  EXPECT_EQ(store_->Get("r0")->seq, (*seqs)[1]);
  std::vector<BatchImageRow> rows = List("b1");
  EXPECT_EQ(rows[0].image.job_id, "r0");
  EXPECT_EQ(rows[1].image.job_id, "b1-job-1");
  EXPECT_EQ(rows[2].image.job_id, "r2");

  auto none = store_->RetryImages({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_P(BatchConformanceTest, ARetryOfAnUnknownImageWritesNothing) {
  Create(MakeBatch("b1", 2));
  ASSERT_TRUE(store_->ScheduleImageRetry("b1-image-0", 5'000).ok());
  auto seqs = store_->RetryImages({MakeRetry("b1", "b1-image-0", "new-0"), MakeRetry("b1", "no-such-image", "new-1")});
  ASSERT_FALSE(seqs.ok());
  EXPECT_EQ(seqs.status().code(), StatusCode::kInvalid);
  EXPECT_TRUE(Contains(seqs.status().message(), "no-such-image")) << seqs.status().message();

  // The first pair, written before the unknown image was found, was rolled back.
  EXPECT_EQ(store_->Get("new-0").status().code(), StatusCode::kNotFound);
  std::vector<BatchImageRow> rows = List("b1");
  EXPECT_EQ(rows[0].image.job_id, "b1-job-0");
  EXPECT_EQ(rows[0].image.attempts, 1);
  EXPECT_EQ(rows[0].image.retry_at_ms, 5'000);
  EXPECT_EQ(RowCounts(), "1/2/2");
}

TEST_P(BatchConformanceTest, ARetryWhoseJobNamesAnotherBatchOrReusesAJobIdWritesNothing) {
  Create(MakeBatch("b1", 2));
  auto wrong_batch = store_->RetryImages({MakeRetry("b2", "b1-image-0", "new-0")});
  ASSERT_FALSE(wrong_batch.ok());
  EXPECT_EQ(wrong_batch.status().code(), StatusCode::kInvalid);
  auto reused =
      store_->RetryImages({MakeRetry("b1", "b1-image-0", "new-0"), MakeRetry("b1", "b1-image-1", "b1-job-0")});
  ASSERT_FALSE(reused.ok());
  EXPECT_EQ(reused.status().code(), StatusCode::kInvalid);
  EXPECT_EQ(RowCounts(), "1/2/2");
  EXPECT_EQ(List("b1")[0].image.job_id, "b1-job-0");
}

TEST_P(BatchConformanceTest, AFailureBeforeTheRetryCommitsWritesNothing) {
  Create(MakeBatch("b1", 2));
  SetJobStatus("b1-job-0", JobStatus::kError, "bad image");
  SetJobStatus("b1-job-1", JobStatus::kError, "bad image");
  ASSERT_TRUE(store_->ScheduleImageRetry("b1-image-1", 7'000).ok());

  ASSERT_TRUE(ArmFailpoints("store.retry_images").ok());
  auto seqs = store_->RetryImages({MakeRetry("b1", "b1-image-0", "new-0"), MakeRetry("b1", "b1-image-1", "new-1")});
  ASSERT_FALSE(seqs.ok());
  EXPECT_EQ(seqs.status().code(), StatusCode::kIo);
  EXPECT_TRUE(Contains(seqs.status().message(), "injected failure")) << seqs.status().message();

  EXPECT_EQ(RowCounts(), "1/2/2");
  std::vector<BatchImageRow> rows = List("b1");
  ASSERT_EQ(rows.size(), 2u);
  for (const BatchImageRow& row : rows) {
    EXPECT_EQ(row.image.attempts, 1) << row.image.id;
    EXPECT_EQ(row.job_status, JobStatus::kError) << row.image.id;
  }
  EXPECT_EQ(rows[0].image.job_id, "b1-job-0");
  EXPECT_EQ(rows[1].image.job_id, "b1-job-1");
  EXPECT_EQ(rows[1].image.retry_at_ms, 7'000);

  DisarmFailpoints();
  ASSERT_TRUE(
      store_->RetryImages({MakeRetry("b1", "b1-image-0", "new-0"), MakeRetry("b1", "b1-image-1", "new-1")}).ok());
  EXPECT_EQ(RowCounts(), "1/2/4");
}

// --- Scheduled retries -------------------------------------------------------------

TEST_P(BatchConformanceTest, ScheduledRetriesComeDueInTimeOrder) {
  EXPECT_EQ(store_->NextImageRetryMs().value(), 0);
  Create(MakeBatch("b1", 3));
  Create(MakeBatch("b2", 2));
  ASSERT_TRUE(store_->ScheduleImageRetry("b1-image-0", 3'000).ok());
  ASSERT_TRUE(store_->ScheduleImageRetry("b2-image-1", 1'000).ok());
  ASSERT_TRUE(store_->ScheduleImageRetry("b1-image-2", 2'000).ok());
  ASSERT_TRUE(store_->ScheduleImageRetry("b2-image-0", 2'000).ok());  // a tie: created after b1's

  EXPECT_EQ(store_->NextImageRetryMs().value(), 1'000);
  auto due = [&](int64_t now) {
    auto rows = store_->ImagesDueForRetry(now);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    return rows.ok() ? ImageIds(*rows) : std::vector<std::string>{};
  };
  EXPECT_EQ(due(999), (std::vector<std::string>{}));
  EXPECT_EQ(due(1'000), (std::vector<std::string>{"b2-image-1"}));
  EXPECT_EQ(due(2'999), (std::vector<std::string>{"b2-image-1", "b1-image-2", "b2-image-0"}));
  EXPECT_EQ(due(1'000'000), (std::vector<std::string>{"b2-image-1", "b1-image-2", "b2-image-0", "b1-image-0"}));

  // Rows come with their jobs.
  SetJobStatus("b2-job-1", JobStatus::kError, "timed out");
  auto rows = store_->ImagesDueForRetry(1'000);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].image.batch_id, "b2");
  EXPECT_EQ((*rows)[0].image.retry_at_ms, 1'000);
  EXPECT_EQ((*rows)[0].job_status, JobStatus::kError);
  EXPECT_EQ((*rows)[0].job_error, "timed out");

  // 0 clears.
  ASSERT_TRUE(store_->ScheduleImageRetry("b2-image-1", 0).ok());
  EXPECT_EQ(store_->NextImageRetryMs().value(), 2'000);
  EXPECT_EQ(due(1'500), (std::vector<std::string>{}));
  EXPECT_EQ(List("b2")[1].image.retry_at_ms, 0);
}

TEST_P(BatchConformanceTest, SchedulingARetryOfAnUnknownImageOrAtANegativeTimeFails) {
  Create(MakeBatch("b1", 1));
  EXPECT_EQ(store_->ScheduleImageRetry("no-such-image", 1'000).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ScheduleImageRetry("b1-image-0", -1).code(), StatusCode::kInvalid);
  EXPECT_EQ(store_->NextImageRetryMs().value(), 0);
}

// --- ImageForJob -------------------------------------------------------------------

TEST_P(BatchConformanceTest, ImageForJobFindsTheImageOfItsCurrentJobOnly) {
  Create(MakeBatch("b1", 2));
  Job plain;
  plain.id = "not-a-batch-job";
  ASSERT_TRUE(store_->Insert(plain).ok());
  SetJobStatus("b1-job-1", JobStatus::kError, "bad image");

  auto row = store_->ImageForJob("b1-job-1");
  ASSERT_TRUE(row.ok()) << row.status().ToString();
  EXPECT_EQ(row->image.id, "b1-image-1");
  EXPECT_EQ(row->image.batch_id, "b1");
  EXPECT_EQ(row->image.position, 1);
  EXPECT_EQ(row->job_status, JobStatus::kError);
  EXPECT_EQ(row->job_error, "bad image");

  EXPECT_EQ(store_->ImageForJob("not-a-batch-job").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ImageForJob("no-such-job").status().code(), StatusCode::kNotFound);

  // After a retry the old job is history: no image's current job.
  ASSERT_TRUE(store_->RetryImages({MakeRetry("b1", "b1-image-1", "b1-job-1-retry")}).ok());
  EXPECT_EQ(store_->ImageForJob("b1-job-1").status().code(), StatusCode::kNotFound);
  auto retried = store_->ImageForJob("b1-job-1-retry");
  ASSERT_TRUE(retried.ok()) << retried.status().ToString();
  EXPECT_EQ(retried->image.id, "b1-image-1");
  EXPECT_EQ(retried->image.attempts, 2);
  EXPECT_EQ(retried->job_status, JobStatus::kQueued);
}

// --- Notification and settling ---------------------------------------------------

TEST_P(BatchConformanceTest, ABatchIsMarkedNotifiedOnceEvenAcrossReopening) {
  Create(MakeBatch("b1", 1));
  Create(MakeBatch("b2", 1));
  EXPECT_EQ(store_->UnnotifiedBatchIds().value(), (std::vector<std::string>{"b1", "b2"}));

  auto first = store_->MarkBatchNotified("b1", 1'700'000'050'000);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(*first);
  auto second = store_->MarkBatchNotified("b1", 1'700'000'060'000);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_FALSE(*second);
  EXPECT_EQ(store_->GetBatch("b1")->notified_ms, 1'700'000'050'000);
  EXPECT_EQ(store_->UnnotifiedBatchIds().value(), (std::vector<std::string>{"b2"}));

  store_ = OpenStore();
  ASSERT_NE(store_, nullptr);
  auto after_reopen = store_->MarkBatchNotified("b1", 1'700'000'070'000);
  ASSERT_TRUE(after_reopen.ok()) << after_reopen.status().ToString();
  EXPECT_FALSE(*after_reopen);
  EXPECT_EQ(store_->GetBatch("b1")->notified_ms, 1'700'000'050'000);
  EXPECT_EQ(store_->UnnotifiedBatchIds().value(), (std::vector<std::string>{"b2"}));
  EXPECT_TRUE(store_->MarkBatchNotified("b2", 1'700'000'070'000).value());
  EXPECT_TRUE(store_->UnnotifiedBatchIds().value().empty());
}

TEST_P(BatchConformanceTest, MarkingAnUnknownBatchOrAtTimeZeroFails) {
  Create(MakeBatch("b1", 1));
  EXPECT_EQ(store_->MarkBatchNotified("nope", 1'000).status().code(), StatusCode::kNotFound);
  // 0 is "not yet": accepting it would let the batch notify twice.
  EXPECT_EQ(store_->MarkBatchNotified("b1", 0).status().code(), StatusCode::kInvalid);
  EXPECT_TRUE(store_->MarkBatchNotified("b1", 1'000).value());
}

TEST_P(BatchConformanceTest, UnsettledBatchesAreThoseWithWorkLeftInCreationOrder) {
  Create(MakeBatch("done", 2));
  Create(MakeBatch("queued", 2));
  Create(MakeBatch("running", 2));
  Create(MakeBatch("waiting-retry", 2));
  Create(MakeBatch("failed", 2));
  for (const char* job : {"done-job-0", "done-job-1", "queued-job-1", "running-job-1"}) {
    SetJobStatus(job, JobStatus::kSuccess);
  }
  SetJobStatus("running-job-0", JobStatus::kRunning);
  SetJobStatus("waiting-retry-job-0", JobStatus::kSuccess);
  SetJobStatus("waiting-retry-job-1", JobStatus::kError, "bad image");
  ASSERT_TRUE(store_->ScheduleImageRetry("waiting-retry-image-1", 9'000).ok());
  SetJobStatus("failed-job-0", JobStatus::kError, "bad image");
  SetJobStatus("failed-job-1", JobStatus::kCanceled, "canceled by the client");

  EXPECT_EQ(Unsettled(), (std::vector<std::string>{"queued", "running", "waiting-retry"}));

  // Settling each in turn removes it.
  SetJobStatus("queued-job-0", JobStatus::kSuccess);
  EXPECT_EQ(Unsettled(), (std::vector<std::string>{"running", "waiting-retry"}));
  SetJobStatus("running-job-0", JobStatus::kError, "worker crashed");
  EXPECT_EQ(Unsettled(), (std::vector<std::string>{"waiting-retry"}));
  // The retry runs: its new queued job keeps the batch unsettled.
  ASSERT_TRUE(store_->RetryImages({MakeRetry("waiting-retry", "waiting-retry-image-1", "wr-retry")}).ok());
  EXPECT_EQ(Unsettled(), (std::vector<std::string>{"waiting-retry"}));
  SetJobStatus("wr-retry", JobStatus::kSuccess);
  EXPECT_TRUE(Unsettled().empty());
  // A plain queued job outside any batch settles nothing and unsettles nothing.
  Job plain;
  plain.id = "plain";
  ASSERT_TRUE(store_->Insert(plain).ok());
  EXPECT_TRUE(Unsettled().empty());
}

}  // namespace tessera::store::testing
