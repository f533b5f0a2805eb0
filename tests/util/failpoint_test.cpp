#include "util/failpoint.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace tessera {
namespace {

// Failpoints are process-wide: every test starts and ends with none armed.
class FailpointTest : public ::testing::Test {
 protected:
  void SetUp() override { DisarmFailpoints(); }
  void TearDown() override { DisarmFailpoints(); }
};

// Which of `hits` consecutive hits of `name` fired, 1-based.
std::vector<int> FiringHits(const std::string& name, int hits) {
  std::vector<int> fired;
  for (int hit = 1; hit <= hits; ++hit) {
    if (FailpointHit(name)) fired.push_back(hit);
  }
  return fired;
}

TEST_F(FailpointTest, NothingFiresWhenNothingIsArmed) {
  EXPECT_FALSE(FailpointHit("store.create_batch"));
  EXPECT_FALSE(FailpointHit(""));
}

TEST_F(FailpointTest, APointWithoutACountFiresOnEveryHitUntilDisarmed) {
  ASSERT_TRUE(ArmFailpoints("store.create_batch").ok());
  EXPECT_EQ(FiringHits("store.create_batch", 4), (std::vector<int>{1, 2, 3, 4}));
  EXPECT_FALSE(FailpointHit("store.retry_images"));
  DisarmFailpoints();
  EXPECT_FALSE(FailpointHit("store.create_batch"));
}

TEST_F(FailpointTest, AStarCountFiresOnTheFirstHitsOnly) {
  ASSERT_TRUE(ArmFailpoints("engine.tile_alloc*2").ok());
  EXPECT_EQ(FiringHits("engine.tile_alloc", 5), (std::vector<int>{1, 2}));
  EXPECT_FALSE(ArmFailpoints("x*0").ok());
  EXPECT_FALSE(ArmFailpoints("x*").ok());
  EXPECT_FALSE(ArmFailpoints("x*2@1").ok());
}

TEST_F(FailpointTest, ACommaSeparatedSpecArmsEachPointWithItsOwnCount) {
  ASSERT_TRUE(ArmFailpoints("a,b@3").ok());
  EXPECT_EQ(FiringHits("a", 3), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(FiringHits("b", 5), (std::vector<int>{3}));
  EXPECT_FALSE(FailpointHit("c"));
  // Names are whole: a prefix or an extension of an armed name is another point.
  EXPECT_FALSE(FailpointHit("b@3"));
  EXPECT_FALSE(FailpointHit("aa"));
}

TEST_F(FailpointTest, AtNFiresOnlyOnTheNthHitAndNeverAgain) {
  ASSERT_TRUE(ArmFailpoints("upload.write@3").ok());
  EXPECT_EQ(FiringHits("upload.write", 10), (std::vector<int>{3}));
}

TEST_F(FailpointTest, HitsOfOtherPointsDoNotAdvanceTheCount) {
  ASSERT_TRUE(ArmFailpoints("a@2,b@2").ok());
  EXPECT_FALSE(FailpointHit("a"));
  EXPECT_FALSE(FailpointHit("b"));
  EXPECT_FALSE(FailpointHit("unarmed"));
  EXPECT_TRUE(FailpointHit("a"));
  EXPECT_TRUE(FailpointHit("b"));
}

TEST_F(FailpointTest, ArmingReplacesEarlierPointsAndStartsTheirCountsAgain) {
  ASSERT_TRUE(ArmFailpoints("a@2,b").ok());
  EXPECT_FALSE(FailpointHit("a"));  // a's first hit
  ASSERT_TRUE(ArmFailpoints("a@2").ok());
  EXPECT_FALSE(FailpointHit("b"));  // no longer armed
  EXPECT_EQ(FiringHits("a", 3), (std::vector<int>{2}));
}

TEST_F(FailpointTest, AnEmptySpecArmsNothing) {
  ASSERT_TRUE(ArmFailpoints("a").ok());
  ASSERT_TRUE(ArmFailpoints("").ok());
  EXPECT_FALSE(FailpointHit("a"));
  ASSERT_TRUE(ArmFailpoints(",,").ok());
  EXPECT_FALSE(FailpointHit("a"));
  // Empty items between commas are skipped, not errors.
  ASSERT_TRUE(ArmFailpoints(",a,,b@2,").ok());
  EXPECT_TRUE(FailpointHit("a"));
  EXPECT_EQ(FiringHits("b", 3), (std::vector<int>{2}));
}

TEST_F(FailpointTest, MalformedSpecsAreInvalid) {
  for (const char* spec : {"a@0", "a@", "@3", "@", "a@x", "a@3x", "a@-1", "a@+1", "a@ 3", "a@@2", "a@1.5", "ok,a@0",
                           "a@99999999999999999999999"}) {
    Status status = ArmFailpoints(spec);
    EXPECT_EQ(status.code(), StatusCode::kInvalid) << "spec \"" << spec << "\": " << status.ToString();
  }
}

TEST_F(FailpointTest, ConcurrentHitsAreEachCountedOnce) {
  constexpr int kThreads = 4;
  constexpr int kHitsPerThread = 2000;
  // The last hit of all: with a lost update the count would never reach it.
  ASSERT_TRUE(ArmFailpoints("p@" + std::to_string(kThreads * kHitsPerThread)).ok());
  std::atomic<int> fired{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kHitsPerThread; ++i) {
        if (FailpointHit("p")) fired.fetch_add(1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(fired.load(), 1);
  EXPECT_FALSE(FailpointHit("p"));
}

}  // namespace
}  // namespace tessera
