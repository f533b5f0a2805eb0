#include "server/rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace tessera::server {
namespace {

using Clock = RateLimiter::Clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// An arbitrary origin far from the clock's epoch, as a real steady_clock would give.
const Clock::time_point kT0 = Clock::time_point{} + std::chrono::hours(1000);

RateLimiterOptions Options(double capacity, double refill_per_second, size_t max_clients = 1000) {
  RateLimiterOptions o;
  o.capacity = capacity;
  o.refill_per_second = refill_per_second;
  o.max_clients = max_clients;
  return o;
}

TEST(RateLimiterTest, AllowsABurstUpToCapacityThenRefuses) {
  RateLimiter limiter(Options(3, 1));
  for (int64_t left : {2, 1, 0}) {
    auto d = limiter.Take("alice", kT0);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.remaining, left);
    EXPECT_EQ(d.retry_after_seconds, 0);
  }
  auto refused = limiter.Take("alice", kT0);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_seconds, 1);
  EXPECT_EQ(refused.remaining, 0);
}

TEST(RateLimiterTest, RefillsAtTheConfiguredRate) {
  RateLimiter limiter(Options(2, 0.5));  // one token every 2 s
  EXPECT_TRUE(limiter.Take("a", kT0).allowed);
  EXPECT_TRUE(limiter.Take("a", kT0).allowed);
  EXPECT_FALSE(limiter.Take("a", kT0 + milliseconds(1999)).allowed);
  EXPECT_TRUE(limiter.Take("a", kT0 + seconds(2)).allowed);
  EXPECT_FALSE(limiter.Take("a", kT0 + seconds(2)).allowed);
}

TEST(RateLimiterTest, RetryAfterIsTheWholeSecondsUntilTheNextToken) {
  RateLimiter limiter(Options(1, 0.25));  // one token every 4 s
  EXPECT_TRUE(limiter.Take("a", kT0).allowed);
  EXPECT_EQ(limiter.Take("a", kT0).retry_after_seconds, 4);
  EXPECT_EQ(limiter.Take("a", kT0 + milliseconds(500)).retry_after_seconds, 4);  // 3.5 s rounds up
  EXPECT_EQ(limiter.Take("a", kT0 + seconds(3)).retry_after_seconds, 1);
  EXPECT_EQ(limiter.Take("a", kT0 + milliseconds(3999)).retry_after_seconds, 1);  // never 0
  // Waiting exactly as told is enough.
  EXPECT_TRUE(limiter.Take("a", kT0 + seconds(4)).allowed);
}

TEST(RateLimiterTest, RefusedRequestsTakeNothing) {
  RateLimiter limiter(Options(1, 1));
  EXPECT_TRUE(limiter.Take("a", kT0).allowed);
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(limiter.Take("a", kT0 + milliseconds(100 * i)).allowed);
  EXPECT_TRUE(limiter.Take("a", kT0 + seconds(1)).allowed);
}

TEST(RateLimiterTest, NeverRefillsBeyondCapacity) {
  RateLimiter limiter(Options(2, 1));
  EXPECT_TRUE(limiter.Take("a", kT0).allowed);
  auto later = kT0 + std::chrono::hours(5);
  EXPECT_EQ(limiter.Take("a", later).remaining, 1);
  EXPECT_TRUE(limiter.Take("a", later).allowed);
  EXPECT_FALSE(limiter.Take("a", later).allowed);
}

TEST(RateLimiterTest, ClientsHaveSeparateBuckets) {
  RateLimiter limiter(Options(1, 1));
  EXPECT_TRUE(limiter.Take("alice", kT0).allowed);
  EXPECT_FALSE(limiter.Take("alice", kT0).allowed);
  EXPECT_TRUE(limiter.Take("bob", kT0).allowed);
}

TEST(RateLimiterTest, TimeGoingBackwardsRefillsNothing) {
  RateLimiter limiter(Options(1, 1));
  EXPECT_TRUE(limiter.Take("a", kT0 + seconds(10)).allowed);
  EXPECT_FALSE(limiter.Take("a", kT0).allowed);
  EXPECT_FALSE(limiter.Take("a", kT0 + seconds(10)).allowed);  // the stale call did not reset the clock
  EXPECT_TRUE(limiter.Take("a", kT0 + seconds(11)).allowed);
}

TEST(RateLimiterTest, FullBucketsAreForgotten) {
  RateLimiter limiter(Options(2, 1));  // empty to full in 2 s
  for (int i = 0; i < 50; ++i) limiter.Take("client-" + std::to_string(i), kT0);
  EXPECT_EQ(limiter.tracked_clients(), 50u);
  limiter.Take("late", kT0 + seconds(3));  // past a refill period: the sweep runs
  EXPECT_EQ(limiter.tracked_clients(), 1u);
}

TEST(RateLimiterTest, ABucketStillRefillingIsKept) {
  RateLimiter limiter(Options(10, 1));                                   // 10 s to refill from empty
  limiter.Take("light", kT0);                                            // full again at +1 s
  for (int i = 0; i < 10; ++i) limiter.Take("heavy", kT0 + seconds(5));  // empty: full at +15 s
  limiter.Take("probe", kT0 + seconds(10));                              // a sweep runs
  EXPECT_EQ(limiter.tracked_clients(), 2u);                              // heavy and probe
  // heavy kept its state: 5 tokens refilled, not a fresh bucket of 10.
  EXPECT_EQ(limiter.Take("heavy", kT0 + seconds(10)).remaining, 4);
}

TEST(RateLimiterTest, EvictionLosesNoInformation) {
  // A client forgotten because its bucket was full gets exactly what it would have had.
  RateLimiter limiter(Options(2, 1));
  EXPECT_TRUE(limiter.Take("a", kT0).allowed);
  EXPECT_TRUE(limiter.Take("a", kT0).allowed);
  limiter.Take("b", kT0 + seconds(5));  // sweeps "a"
  EXPECT_EQ(limiter.tracked_clients(), 1u);
  EXPECT_TRUE(limiter.Take("a", kT0 + seconds(5)).allowed);
  EXPECT_TRUE(limiter.Take("a", kT0 + seconds(5)).allowed);
  EXPECT_FALSE(limiter.Take("a", kT0 + seconds(5)).allowed);
}

TEST(RateLimiterTest, TrackedClientsNeverExceedTheCap) {
  RateLimiter limiter(Options(100, 0.001, /*max_clients=*/8));  // buckets stay partly empty for ages
  for (int i = 0; i < 1000; ++i) {
    limiter.Take("client-" + std::to_string(i), kT0 + milliseconds(i));
    ASSERT_LE(limiter.tracked_clients(), 8u);
  }
  EXPECT_EQ(limiter.tracked_clients(), 8u);
}

TEST(RateLimiterTest, AtTheCapTheBucketClosestToFullIsDropped) {
  RateLimiter limiter(Options(4, 1, /*max_clients=*/2));
  for (int i = 0; i < 4; ++i) limiter.Take("drained", kT0);  // empty: full at +4 s
  limiter.Take("sipped", kT0);                               // 3 left: full at +1 s
  limiter.Take("newcomer", kT0);                             // must evict one
  EXPECT_EQ(limiter.tracked_clients(), 2u);
  // "drained" kept its empty bucket: still refused.
  EXPECT_FALSE(limiter.Take("drained", kT0).allowed);
}

TEST(RateLimiterTest, ValidatesOptions) {
  EXPECT_TRUE(ValidateRateLimiterOptions(Options(10, 1)).ok());
  EXPECT_EQ(ValidateRateLimiterOptions(Options(0.5, 1)).code(), StatusCode::kInvalid);
  EXPECT_EQ(ValidateRateLimiterOptions(Options(10, 0)).code(), StatusCode::kInvalid);
  EXPECT_EQ(ValidateRateLimiterOptions(Options(10, -1)).code(), StatusCode::kInvalid);
  EXPECT_EQ(ValidateRateLimiterOptions(Options(10, 1, 0)).code(), StatusCode::kInvalid);
}

TEST(RateLimiterTest, ClampsInvalidOptionsToUsableOnes) {
  RateLimiter limiter(Options(0, 0, 0));  // capacity 1, a glacial refill, one client
  EXPECT_TRUE(limiter.Take("a", kT0).allowed);
  auto refused = limiter.Take("a", kT0);
  EXPECT_FALSE(refused.allowed);
  EXPECT_GE(refused.retry_after_seconds, 1);
  limiter.Take("b", kT0);
  EXPECT_EQ(limiter.tracked_clients(), 1u);
}

TEST(RateLimiterTest, ConcurrentTakesNeverOverspend) {
  RateLimiter limiter(Options(1000, 1));
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        if (limiter.Take("shared", kT0).allowed) allowed.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(allowed.load(), 1000);
}

}  // namespace
}  // namespace tessera::server
