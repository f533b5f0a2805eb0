#include "runtime/pipeline.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

namespace tessera::runtime {
namespace {

// How long a wait may take before the test fails instead of hanging. Waits end
// on a notification, never on this.
constexpr auto kPatience = std::chrono::seconds(30);

using First = std::function<Result<int>(size_t)>;
using Second = std::function<Result<std::string>(size_t, int)>;
using Third = std::function<Status(size_t, std::string)>;

Status RunPipeline(size_t count, size_t depth, const First& first, const Second& second, const Third& third) {
  return RunThreeStagePipeline<int, std::string>(count, depth, first, second, third);
}

TEST(PipelineTest, EveryItemGoesThroughEveryStageInOrder) {
  std::vector<size_t> firsts, seconds;
  std::vector<std::string> outputs;
  Status status = RunPipeline(
      20, 1, [&](size_t i) -> Result<int> { firsts.push_back(i); return static_cast<int>(i) * 3; },
      [&](size_t i, int v) -> Result<std::string> { seconds.push_back(i); return std::to_string(v); },
      [&](size_t i, std::string s) -> Status {
        if (i != outputs.size()) return InternalError("out of order");
        outputs.push_back(s);
        return Status::Ok();
      });
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_EQ(outputs.size(), 20u);
  for (size_t i = 0; i < 20; ++i) {
    EXPECT_EQ(firsts[i], i);
    EXPECT_EQ(seconds[i], i);
    EXPECT_EQ(outputs[i], std::to_string(i * 3));
  }
}

TEST(PipelineTest, NothingRunsForAnEmptyBatch) {
  int calls = 0;
  Status status = RunPipeline(
      0, 1, [&](size_t) -> Result<int> { ++calls; return 0; },
      [&](size_t, int) -> Result<std::string> { ++calls; return std::string(); },
      [&](size_t, std::string) { ++calls; return Status::Ok(); });
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(calls, 0);
}

// The middle stage of item 0 waits until the first stage has started item 1: it
// can only happen when the stages overlap (a sequential loop would wait forever,
// which the patience turns into a failure).
TEST(PipelineTest, TheFirstStageRunsAheadWhileTheMiddleStageWorks) {
  std::mutex mutex;
  std::condition_variable changed;
  size_t firsts_started = 0;
  bool overlapped = false;
  Status status = RunPipeline(
      3, 1,
      [&](size_t i) -> Result<int> {
        std::lock_guard lock(mutex);
        firsts_started = i + 1;
        changed.notify_all();
        return static_cast<int>(i);
      },
      [&](size_t i, int v) -> Result<std::string> {
        if (i == 0) {
          std::unique_lock lock(mutex);
          overlapped = changed.wait_for(lock, kPatience, [&] { return firsts_started >= 2; });
        }
        return std::to_string(v);
      },
      [&](size_t, std::string) { return Status::Ok(); });
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_TRUE(overlapped);
}

// Backpressure: with one slot between stages, the first stage can be at most two
// items ahead of the middle one (one waiting in the queue, one being made).
TEST(PipelineTest, ABoundedQueueKeepsTheFirstStageFromRunningAhead) {
  std::mutex mutex;
  size_t seconds_started = 0;
  size_t worst_lead = 0;
  Status status = RunPipeline(
      200, 1,
      [&](size_t i) -> Result<int> {
        std::lock_guard lock(mutex);
        worst_lead = std::max(worst_lead, i - std::min(i, seconds_started));
        return static_cast<int>(i);
      },
      [&](size_t i, int v) -> Result<std::string> {
        {
          std::lock_guard lock(mutex);
          seconds_started = i + 1;
        }
        std::string s;
        for (int k = 0; k < 2000; ++k) s = std::to_string(v + k);  // work, so the producer gets ahead if it can
        return s;
      },
      [&](size_t, std::string) { return Status::Ok(); });
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_LE(worst_lead, 2u);
}

TEST(PipelineTest, AFirstStageErrorStopsTheRunWithThatItemsError) {
  std::vector<size_t> thirds;
  Status status = RunPipeline(
      10, 1,
      [&](size_t i) -> Result<int> {
        if (i == 3) return BadImageError("image 3: not an image");
        return static_cast<int>(i);
      },
      [&](size_t, int v) -> Result<std::string> { return std::to_string(v); },
      [&](size_t i, std::string) { thirds.push_back(i); return Status::Ok(); });
  EXPECT_EQ(status.code(), StatusCode::kBadImage);
  EXPECT_EQ(status.message(), "image 3: not an image");
  for (size_t i : thirds) EXPECT_LT(i, 3u);
}

// The last stage fails while the first is blocked on a full queue: the
// cancellation wakes it, and it stops well before the end of the batch.
TEST(PipelineTest, ALastStageErrorWakesAndStopsTheOtherStages) {
  std::atomic<size_t> firsts{0};
  Status status = RunPipeline(
      1000, 1, [&](size_t i) -> Result<int> { ++firsts; return static_cast<int>(i); },
      [&](size_t, int v) -> Result<std::string> { return std::to_string(v); },
      [&](size_t i, std::string) -> Status {
        if (i == 2) return IoError("image 2: disk full");
        return Status::Ok();
      });
  EXPECT_EQ(status.code(), StatusCode::kIo);
  EXPECT_LT(firsts.load(), 1000u);
}

// Two stages fail on different items: the earlier item's error is the answer,
// as a sequential run would have given. With one slot per queue the first stage
// cannot reach item 5 before the middle stage has taken item 1.
TEST(PipelineTest, TheLowestNumberedFailureIsReported) {
  Status status = RunPipeline(
      10, 1,
      [&](size_t i) -> Result<int> {
        if (i == 5) return BadImageError("image 5");
        return static_cast<int>(i);
      },
      [&](size_t i, int v) -> Result<std::string> {
        if (i == 1) return Status(StatusCode::kTimeout, "image 1: timed out");
        return std::to_string(v);
      },
      [&](size_t, std::string) { return Status::Ok(); });
  EXPECT_EQ(status.code(), StatusCode::kTimeout);
  EXPECT_EQ(status.message(), "image 1: timed out");
}

TEST(PipelineTest, AnExceptionInAStageBecomesAnErrorValue) {
  Status status = RunPipeline(
      4, 1, [&](size_t i) -> Result<int> { return static_cast<int>(i); },
      [&](size_t i, int v) -> Result<std::string> {
        if (i == 2) throw std::bad_alloc();
        return std::to_string(v);
      },
      [&](size_t, std::string) { return Status::Ok(); });
  EXPECT_EQ(status.code(), StatusCode::kOutOfMemory);
}

TEST(BoundedQueueTest, CancelWakesABlockedPushAndPop) {
  BoundedQueue<int> full(1);
  ASSERT_TRUE(full.Push(1));
  BoundedQueue<int> empty(1);
  bool pushed = true;
  std::optional<int> popped = 7;
  std::thread pusher([&] { pushed = full.Push(2); });
  std::thread popper([&] { popped = empty.Pop(); });
  full.Cancel();
  empty.Cancel();
  pusher.join();
  popper.join();
  EXPECT_FALSE(pushed);
  EXPECT_FALSE(popped.has_value());
  EXPECT_EQ(full.high_water(), 1u);
}

TEST(BoundedQueueTest, CloseLetsTheConsumerDrainWhatIsLeft) {
  BoundedQueue<int> queue(3);
  ASSERT_TRUE(queue.Push(1));
  ASSERT_TRUE(queue.Push(2));
  queue.Close();
  EXPECT_EQ(queue.Pop(), 1);
  EXPECT_EQ(queue.Pop(), 2);
  EXPECT_FALSE(queue.Pop().has_value());
}

}  // namespace
}  // namespace tessera::runtime
