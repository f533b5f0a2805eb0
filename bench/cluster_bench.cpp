// Several nodes on one PostgreSQL database (issue 18, "Measure"): the product's
// own Scheduler and ClusterMember, each node with its own PostgresJobStore (its
// own connection pool), in one process; jobs whose work is nothing, so that what
// is measured is the queue.
//
//   make bench-cluster
//   build/bench/cluster_bench [--jobs 10000] [--samples 200] [--poll-samples 30] [--only claim|latency]
//
//   claim    --jobs queued generate jobs drained by 1 lane (1 node), 3 lanes
//            (3 nodes x 1) and 6 lanes (3 nodes x 2): jobs/s from the first
//            node's start to the last job's success, and a check that every job
//            ran exactly once (attempts = 1, the executor called once per id).
//   latency  submit -> running on an idle lane of another node: a job inserted
//            by a second store (another node's submission), timed until the
//            lane's scheduler announces it running; --samples of them one at a
//            time with the NOTIFY wake-up, then --poll-samples with the queued
//            trigger disabled (what the 2 s poll fallback gives).
//
// It starts a throwaway PostgreSQL cluster of its own (tests/store/
// pg_test_cluster.sh: fsync off, Unix socket), so durability costs are not in
// these numbers: on a real database each claim and finish is a commit.
// Nothing here asserts a time: the numbers are for reading.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "jobs/cluster_member.h"
#include "jobs/job_state.h"
#include "jobs/scheduler.h"
#include "store/pg_connection.h"
#include "store/postgres_job_store.h"
#include "util/log.h"
#include "util/uuid.h"

namespace {

using namespace tessera;
using Clock = std::chrono::steady_clock;

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "cluster_bench: %s\n", message.c_str());
  std::exit(1);
}

// Work that is nothing: the job succeeds at once. Counts its calls per id.
class NothingExecutor final : public jobs::JobExecutor {
 public:
  explicit NothingExecutor(std::function<void(const std::string&)> ran) : ran_(std::move(ran)) {}
  jobs::ExecutionOutcome Execute(const store::Job& job, jobs::ExecutionContext&) override {
    ran_(job.id);
    return {jobs::ExecutionOutcome::Kind::kSuccess, ""};
  }

 private:
  std::function<void(const std::string&)> ran_;
};

class OwnCluster {
 public:
  OwnCluster() {
    char dir[] = "/tmp/tessera-cluster-bench-XXXXXX";
    record_ = std::string(::mkdtemp(dir)) + "/record";
    if (Run("start") != 0) Fail("could not start a PostgreSQL cluster (scripts/setup installs PostgreSQL)");
    std::string text = ReadFile(record_);
    socket_ = text.substr(0, text.find('\n'));
  }
  ~OwnCluster() { Run("stop"); }
  // A fresh database; its URL.
  std::string NewDatabase() {
    std::string name = "bench_" + std::to_string(++databases_);
    auto admin = store::pg::PgConnection::Connect(Url("postgres"));
    if (!admin.ok()) Fail(admin.status().ToString());
    if (Status s = (*admin)->ExecScript("create database", "CREATE DATABASE " + name); !s.ok()) Fail(s.ToString());
    return Url(name);
  }

 private:
  int Run(const std::string& action) {
    std::string command = std::string("sh ") + TESSERA_PG_TEST_CLUSTER_SCRIPT + " " + action + " " + record_;
    return std::system(command.c_str());
  }
  std::string Url(const std::string& database) const {
    return "postgresql:///" + database + "?host=" + socket_ + "&user=postgres";
  }
  static std::string ReadFile(const std::string& path) {
    std::string text;
    if (FILE* f = std::fopen(path.c_str(), "r")) {
      char buffer[512];
      size_t n;
      while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) text.append(buffer, n);
      std::fclose(f);
    }
    return text;
  }
  std::string record_;
  std::string socket_;
  int databases_ = 0;
};

// What the nodes saw: executor calls per id, and jobs announced running / successful.
struct Observed {
  std::mutex mutex;
  std::condition_variable changed;
  std::map<std::string, int> executed;
  std::map<std::string, Clock::time_point> running_at;
  int64_t successes = 0;
};

struct Node {
  std::unique_ptr<store::PostgresJobStore> store;
  std::unique_ptr<jobs::Scheduler> scheduler;
  std::unique_ptr<jobs::ClusterMember> member;
};

std::unique_ptr<Node> StartNode(const std::string& url, const std::string& name, int lanes, Observed& observed) {
  auto node = std::make_unique<Node>();
  auto opened = store::PostgresJobStore::Open(url);
  if (!opened.ok()) Fail(opened.status().ToString());
  node->store = std::move(opened).value();
  std::vector<jobs::LaneSpec> specs;
  for (int i = 0; i < lanes; ++i) specs.push_back({"cpu:" + std::to_string(i), -1});
  std::map<store::JobKind, jobs::ExecutorFactory> factories;
  factories[store::JobKind::kGenerate] = [&observed](const jobs::LaneSpec&) {
    return std::make_unique<NothingExecutor>([&observed](const std::string& id) {
      std::lock_guard lock(observed.mutex);
      observed.executed[id] += 1;
    });
  };
  jobs::SchedulerOptions options;
  options.cluster = node->store.get();
  options.node_id = name;
  node->scheduler = std::make_unique<jobs::Scheduler>(*node->store, specs, std::move(factories), options);
  node->scheduler->AddListener([&observed](const jobs::JobView& view) {
    std::lock_guard lock(observed.mutex);
    if (view.job.status == store::JobStatus::kRunning) observed.running_at.emplace(view.job.id, Clock::now());
    if (view.job.status == store::JobStatus::kSuccess) observed.successes += 1;
    observed.changed.notify_all();
  });
  jobs::ClusterMemberOptions member;
  member.node_id = name;
  for (int i = 0; i < lanes; ++i) member.lanes.push_back(node->scheduler->LaneName(i));
  node->member = std::make_unique<jobs::ClusterMember>(*node->store, *node->scheduler, member);
  if (Status s = node->member->Register("http://" + name + ":8080"); !s.ok()) Fail(s.ToString());
  if (Status s = node->scheduler->Start(); !s.ok()) Fail(s.ToString());
  if (Status s = node->member->Start(); !s.ok()) Fail(s.ToString());
  return node;
}

void StopNode(Node& node) {
  node.scheduler->Stop();
  node.member->Stop();
}

store::Job QueuedJob(const std::string& prompt) {
  store::Job job;
  job.id = NewUuidV4();
  job.kind = store::JobKind::kGenerate;
  job.prompt = prompt;
  job.created_ms = jobs::NowMs();
  return job;
}

void MeasureClaims(OwnCluster& cluster, int jobs_count) {
  std::printf("\nclaim throughput: %d queued jobs whose work is nothing\n", jobs_count);
  std::printf("  %-22s %10s %10s %14s %12s\n", "lanes", "seconds", "jobs/s", "attempts != 1", "ran twice");
  for (auto [nodes_count, lanes_per_node] : std::vector<std::pair<int, int>>{{1, 1}, {3, 1}, {3, 2}}) {
    std::string url = cluster.NewDatabase();
    auto filler = store::PostgresJobStore::Open(url);
    if (!filler.ok()) Fail(filler.status().ToString());
    for (int i = 0; i < jobs_count; ++i) {
      if (auto inserted = (*filler)->Insert(QueuedJob("job " + std::to_string(i))); !inserted.ok()) {
        Fail(inserted.status().ToString());
      }
    }
    Observed observed;
    std::vector<std::unique_ptr<Node>> nodes;
    auto start = Clock::now();
    for (int n = 0; n < nodes_count; ++n) {
      nodes.push_back(StartNode(url, "node-" + std::to_string(n), lanes_per_node, observed));
    }
    {
      std::unique_lock lock(observed.mutex);
      observed.changed.wait(lock, [&] { return observed.successes >= jobs_count; });
    }
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    for (auto& node : nodes) StopNode(*node);
    auto raw = store::pg::PgConnection::Connect(url);
    if (!raw.ok()) Fail(raw.status().ToString());
    auto retried = (*raw)->Exec("count", "SELECT count(*) FROM jobs WHERE attempts <> 1 OR status <> 'success'");
    if (!retried.ok()) Fail(retried.status().ToString());
    int twice = 0;
    for (const auto& [id, count] : observed.executed) twice += count > 1 ? 1 : 0;
    std::string label = std::to_string(nodes_count * lanes_per_node) + " (" + std::to_string(nodes_count) + " node" +
                        (nodes_count > 1 ? "s" : "") + " x " + std::to_string(lanes_per_node) + ")";
    std::printf("  %-22s %10.2f %10.0f %14lld %12d\n", label.c_str(), seconds, jobs_count / seconds,
                static_cast<long long>(retried->Int(0, 0)), twice);
    std::fflush(stdout);
  }
}

double Percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  size_t index = std::min(values.size() - 1, static_cast<size_t>(p * (values.size() - 1) + 0.5));
  return values[index];
}

void MeasureLatency(OwnCluster& cluster, int samples, int poll_samples) {
  std::printf("\nsubmit -> running on an idle lane of another node\n");
  std::printf("  %-34s %8s %9s %9s %9s %9s\n", "wake-up", "samples", "p50 ms", "p90 ms", "p99 ms", "max ms");
  std::string url = cluster.NewDatabase();
  Observed observed;
  auto node = StartNode(url, "node-idle", 1, observed);
  auto submitter = store::PostgresJobStore::Open(url);
  if (!submitter.ok()) Fail(submitter.status().ToString());
  auto raw = store::pg::PgConnection::Connect(url);
  if (!raw.ok()) Fail(raw.status().ToString());
  for (bool notify : {true, false}) {
    if (!notify) {
      // What a missed notification leaves: the lanes' own poll.
      if (Status s = (*raw)->ExecScript("disable the trigger", "ALTER TABLE jobs DISABLE TRIGGER jobs_queued_on_insert");
          !s.ok()) {
        Fail(s.ToString());
      }
    }
    std::vector<double> ms;
    int count = notify ? samples : poll_samples;
    for (int i = 0; i < count; ++i) {
      // An idle lane: after each job a lane looks at the queue once more at
      // once; a job inserted during that look would measure the look, not the
      // wake-up. 50 ms is far longer than that look.
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      store::Job job = QueuedJob("latency " + std::to_string(i));
      int64_t before = 0;
      {
        std::lock_guard lock(observed.mutex);
        before = observed.successes;
      }
      auto sent = Clock::now();
      if (auto inserted = (*submitter)->Insert(job); !inserted.ok()) Fail(inserted.status().ToString());
      std::unique_lock lock(observed.mutex);
      observed.changed.wait(lock, [&] { return observed.successes > before && observed.running_at.count(job.id); });
      ms.push_back(std::chrono::duration<double, std::milli>(observed.running_at[job.id] - sent).count());
    }
    std::printf("  %-34s %8d %9.2f %9.2f %9.2f %9.2f\n",
                notify ? "LISTEN/NOTIFY" : "poll fallback (trigger disabled)", count, Percentile(ms, 0.5),
                Percentile(ms, 0.9), Percentile(ms, 0.99), Percentile(ms, 1.0));
    std::fflush(stdout);
  }
  StopNode(*node);
}

}  // namespace

int main(int argc, char** argv) {
  int jobs_count = 10000;
  int samples = 200;
  int poll_samples = 30;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) Fail(flag + " needs a value");
    if (flag == "--only") {
      only = argv[++i];
      if (only != "claim" && only != "latency") Fail("--only takes claim or latency");
      continue;
    }
    int value = std::atoi(argv[++i]);
    if (value <= 0) Fail(flag + " needs a positive number");
    if (flag == "--jobs") jobs_count = value;
    else if (flag == "--samples") samples = value;
    else if (flag == "--poll-samples") poll_samples = value;
    else Fail("unknown flag " + flag + " (see the comment at the top of bench/cluster_bench.cpp)");
  }
  tessera::SetLogLevel(tessera::LogLevel::kWarn);
  std::printf("cluster_bench: %u CPUs seen; PostgreSQL on a Unix socket, fsync off\n",
              std::thread::hardware_concurrency());
  OwnCluster cluster;
  if (only.empty() || only == "claim") MeasureClaims(cluster, jobs_count);
  if (only.empty() || only == "latency") MeasureLatency(cluster, samples, poll_samples);
  return 0;
}
