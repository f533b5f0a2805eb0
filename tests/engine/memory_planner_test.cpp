#include "engine/memory_planner.h"

#include <gtest/gtest.h>

#include <optional>

namespace tessera::engine {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

// A probe the test sets: the free memory the planner reads next.
struct FakeProbe {
  std::optional<uint64_t> free;
  MemoryProbeFn fn() {
    return [this] { return free; };
  }
};

MemoryPlanOptions Options(FakeProbe& probe, bool safe = false, uint64_t max_chunk = 0, int retries = 3) {
  MemoryPlanOptions o;
  o.safe_mode = safe;
  o.max_chunk_bytes = max_chunk;
  o.oom_retries = retries;
  o.probe = probe.fn();
  return o;
}

TEST(ChunkPlannerTest, AChunkTakesFortyFivePercentOfTheFreeMemoryOrTwentyEightInSafeMode) {
  FakeProbe probe{1000 * kMiB};
  ChunkPlanner normal(Options(probe), 10 * kMiB);
  EXPECT_EQ(normal.NextChunk(1000), 45u);
  EXPECT_EQ(normal.last_budget_bytes(), 450 * kMiB);
  ChunkPlanner safe(Options(probe, /*safe=*/true), 10 * kMiB);
  EXPECT_EQ(safe.NextChunk(1000), 28u);
}

TEST(ChunkPlannerTest, TheCapIsTakenOnceAndNeverRaisedWhenMemoryFreesUp) {
  FakeProbe probe{1000 * kMiB};
  ChunkPlanner planner(Options(probe), 10 * kMiB);
  EXPECT_EQ(planner.cap_bytes(), 450 * kMiB);
  probe.free = 4000 * kMiB;  // memory freed after the plan was made
  EXPECT_EQ(planner.NextChunk(1000), 45u);
  probe.free = 100 * kMiB;  // and then taken by someone else: below the cap is fine
  EXPECT_EQ(planner.NextChunk(1000), 4u);
}

TEST(ChunkPlannerTest, MaxChunkCapsTheBudgetWhateverIsFree) {
  FakeProbe probe{1000 * kMiB};
  ChunkPlanner planner(Options(probe, false, 64 * kMiB), 10 * kMiB);
  EXPECT_EQ(planner.cap_bytes(), 64 * kMiB);
  EXPECT_EQ(planner.NextChunk(1000), 6u);
}

TEST(ChunkPlannerTest, AChunkIsAtLeastOneTileAndAtMostTheTilesLeft) {
  FakeProbe probe{10 * kMiB};
  ChunkPlanner tight(Options(probe), 100 * kMiB);
  EXPECT_EQ(tight.NextChunk(7), 1u);
  probe.free = 100000 * kMiB;
  ChunkPlanner roomy(Options(probe), kMiB);
  EXPECT_EQ(roomy.NextChunk(7), 7u);
  EXPECT_EQ(roomy.NextChunk(0), 0u);
}

TEST(ChunkPlannerTest, WithoutAProbeReadingItRunsOneTileAtATimeAsBefore) {
  FakeProbe probe{std::nullopt};
  ChunkPlanner planner(Options(probe), 10 * kMiB);
  EXPECT_EQ(planner.NextChunk(50), 1u);
  EXPECT_EQ(planner.NextChunk(50), 1u);
  ChunkPlanner capped(Options(probe, false, 35 * kMiB), 10 * kMiB);
  EXPECT_EQ(capped.NextChunk(50), 3u);  // the flag's cap is a plan hint too
}

TEST(ChunkPlannerTest, AnOutOfMemoryShrinksTheChunkBySevenTenthsUntilTheRetriesAreSpent) {
  FakeProbe probe{1000 * kMiB};
  ChunkPlanner planner(Options(probe), 10 * kMiB);
  ASSERT_EQ(planner.NextChunk(1000), 45u);
  const Status oom(StatusCode::kOutOfMemory, "test");
  ASSERT_TRUE(planner.ShrinkAfterOom(45, oom));
  EXPECT_NEAR(static_cast<double>(planner.cap_bytes()), 315.0 * kMiB, 2.0);  // 450 x 0.7
  EXPECT_EQ(planner.NextChunk(1000), 31u);
  ASSERT_TRUE(planner.ShrinkAfterOom(31, oom));
  EXPECT_EQ(planner.NextChunk(1000), 21u);  // 217 MiB
  ASSERT_TRUE(planner.ShrinkAfterOom(21, oom));
  EXPECT_EQ(planner.retries_used(), 3);
  EXPECT_FALSE(planner.ShrinkAfterOom(14, oom));
  // The lowered cap holds even when memory frees up.
  probe.free = 100000 * kMiB;
  EXPECT_EQ(planner.NextChunk(1000), 14u);
}

TEST(ChunkPlannerTest, ShrinkingStopsAtOneTileAndSixteenMebibytes) {
  FakeProbe probe{1000 * kMiB};
  const Status oom(StatusCode::kOutOfMemory, "test");
  ChunkPlanner big_tiles(Options(probe, false, 0, 10), 100 * kMiB);
  ASSERT_TRUE(big_tiles.ShrinkAfterOom(1, oom));
  EXPECT_EQ(big_tiles.cap_bytes(), 100 * kMiB);  // one tile: nothing smaller to try
  EXPECT_EQ(big_tiles.NextChunk(10), 1u);
  ChunkPlanner small_tiles(Options(probe, false, 0, 10), 2 * kMiB);
  ASSERT_TRUE(small_tiles.ShrinkAfterOom(10, oom));  // 20 MiB x 0.7 = 14: floored at 16
  EXPECT_EQ(small_tiles.cap_bytes(), 16 * kMiB);
  ASSERT_TRUE(small_tiles.ShrinkAfterOom(4, oom));  // 8 MiB, under the floor: kept, never raised
  EXPECT_EQ(small_tiles.cap_bytes(), 8 * kMiB);
}

TEST(ChunkPlannerTest, NoRetriesMeansTheFirstOutOfMemoryIsFinal) {
  FakeProbe probe{1000 * kMiB};
  ChunkPlanner planner(Options(probe, false, 0, 0), 10 * kMiB);
  EXPECT_FALSE(planner.ShrinkAfterOom(45, Status(StatusCode::kOutOfMemory, "test")));
}

TEST(MemoryBudgetTest, ReservationsCountUntilReleasedAndRefuseBeyondTheLimit) {
  MemoryBudget budget(100 * kMiB);
  auto a = budget.Reserve(60 * kMiB);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(budget.used(), 60 * kMiB);
  auto b = budget.Reserve(50 * kMiB);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kOutOfMemory);
  EXPECT_NE(b.status().message().find("40.0 MiB of 100.0 MiB left"), std::string::npos) << b.status().message();
  {
    auto c = budget.Reserve(40 * kMiB);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(budget.available(), 0u);
  }
  EXPECT_EQ(budget.used(), 60 * kMiB);
  MemoryBudget::Reservation moved = std::move(a).value();
  EXPECT_EQ(budget.used(), 60 * kMiB);
  moved.Release();
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_FALSE(budget.Reserve(101 * kMiB).ok());
}

TEST(OomPolicyTest, OnlyAGpuRunWithFallbackAllowedMovesToTheCpu) {
  EXPECT_EQ(AfterOomRetriesSpent(true, true), OomOutcome::kFallBackToCpu);
  EXPECT_EQ(AfterOomRetriesSpent(true, false), OomOutcome::kFail);
  EXPECT_EQ(AfterOomRetriesSpent(false, true), OomOutcome::kFail);
  EXPECT_EQ(AfterOomRetriesSpent(false, false), OomOutcome::kFail);
}

}  // namespace
}  // namespace tessera::engine
