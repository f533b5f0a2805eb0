#include "jobs/eta_estimator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace tessera::jobs {
namespace {

using Source = ProgressEvent::Source;

std::vector<Seconds> Durations(std::initializer_list<double> seconds) {
  std::vector<Seconds> out;
  for (double s : seconds) out.emplace_back(s);
  return out;
}

TEST(EtaEstimatorTest, MovingAverageIsUnknownWithoutHistory) { EXPECT_EQ(MovingAverageDuration({}), std::nullopt); }

TEST(EtaEstimatorTest, MovingAverageIsTheMean) {
  auto history = Durations({100, 200, 300});
  auto avg = MovingAverageDuration(history);
  ASSERT_TRUE(avg.has_value());
  EXPECT_DOUBLE_EQ(avg->count(), 200);
}

TEST(EtaEstimatorTest, MovingAverageUsesAtMostTheFiftyMostRecent) {
  std::vector<Seconds> history(50, Seconds{10});      // the 50 most recent
  history.insert(history.end(), 100, Seconds{1000});  // older: must not count
  auto avg = MovingAverageDuration(history);
  ASSERT_TRUE(avg.has_value());
  EXPECT_DOUBLE_EQ(avg->count(), 10);
  // A larger window is still capped at 50.
  EXPECT_DOUBLE_EQ(MovingAverageDuration(history, 500)->count(), 10);
}

TEST(EtaEstimatorTest, MovingAverageHonoursASmallerWindowFromTheFront) {
  auto history = Durations({10, 20, 30, 1000});
  EXPECT_DOUBLE_EQ(MovingAverageDuration(history, 3)->count(), 20);
  EXPECT_DOUBLE_EQ(MovingAverageDuration(history, 1)->count(), 10);
  EXPECT_EQ(MovingAverageDuration(history, 0), std::nullopt);
}

TEST(EtaEstimatorTest, MovingAverageSkipsCorruptDurations) {
  auto history =
      Durations({-5, std::numeric_limits<double>::quiet_NaN(), 40, 60, std::numeric_limits<double>::infinity()});
  EXPECT_DOUBLE_EQ(MovingAverageDuration(history)->count(), 50);
  EXPECT_EQ(MovingAverageDuration(Durations({-1, -2})), std::nullopt);
}

TEST(EtaEstimatorTest, QueuedEtaFollowsTheSeedFormula) {
  EXPECT_DOUBLE_EQ(QueuedEta(Seconds{100}, 0).count(), 105);
  EXPECT_DOUBLE_EQ(QueuedEta(Seconds{100}, 2).count(), 100 * 3 * 1.05);
  EXPECT_DOUBLE_EQ(QueuedEta(Seconds{100}, -4).count(), 105);  // nonsense count: as if first
}

TEST(EtaEstimatorTest, RunningEtaFollowsTheSeedFormula) {
  EXPECT_DOUBLE_EQ(RunningEta(Seconds{100}, Seconds{40}).count(), 60 * 1.05);
  EXPECT_DOUBLE_EQ(RunningEta(Seconds{100}, Seconds{0}).count(), 105);
  EXPECT_DOUBLE_EQ(RunningEta(Seconds{100}, Seconds{150}).count(), 0);  // overdue: never negative
  EXPECT_DOUBLE_EQ(RunningEta(Seconds{100}, Seconds{-10}).count(), 105);
}

TEST(EtaEstimatorTest, ProgressRemainingExtrapolatesTheStepRate) {
  // 10 of 40 steps in 30 s: 3 s a step, 30 steps left.
  auto remaining = ProgressRemaining({10, 40, Source::kHeuristic}, Seconds{30});
  ASSERT_TRUE(remaining.has_value());
  EXPECT_DOUBLE_EQ(remaining->count(), 90);
  EXPECT_DOUBLE_EQ(ProgressRemaining({40, 40, Source::kHeuristic}, Seconds{30})->count(), 0);
}

TEST(EtaEstimatorTest, ProgressRemainingNeedsAStepDone) {
  EXPECT_EQ(ProgressRemaining({0, 40, Source::kStructured}, Seconds{30}), std::nullopt);
  EXPECT_EQ(ProgressRemaining({5, 0, Source::kStructured}, Seconds{30}), std::nullopt);
  EXPECT_EQ(ProgressRemaining({50, 40, Source::kStructured}, Seconds{30}), std::nullopt);
}

TEST(EtaEstimatorTest, EstimateRunningPrefersAStructuredEvent) {
  RunningJobTiming t;
  t.elapsed = Seconds{30};
  t.progress = ProgressEvent{10, 40, Source::kStructured};
  t.average_duration = Seconds{1000};
  t.default_duration = Seconds{5000};
  EtaEstimate e = EstimateRunning(t);
  EXPECT_EQ(e.tier, EtaTier::kStructured);
  EXPECT_DOUBLE_EQ(e.remaining.count(), 90);
  EXPECT_DOUBLE_EQ(e.progress, 0.25);
}

TEST(EtaEstimatorTest, EstimateRunningReportsAHeuristicEventAsSuch) {
  RunningJobTiming t;
  t.elapsed = Seconds{20};
  t.progress = ProgressEvent{20, 40, Source::kHeuristic};
  EtaEstimate e = EstimateRunning(t);
  EXPECT_EQ(e.tier, EtaTier::kHeuristic);
  EXPECT_DOUBLE_EQ(e.remaining.count(), 20);
  EXPECT_DOUBLE_EQ(e.progress, 0.5);
}

TEST(EtaEstimatorTest, EstimateRunningFallsBackToTheAverageAtStepZero) {
  RunningJobTiming t;
  t.elapsed = Seconds{25};
  t.progress = ProgressEvent{0, 40, Source::kStructured};
  t.average_duration = Seconds{100};
  t.default_duration = Seconds{5000};
  EtaEstimate e = EstimateRunning(t);
  EXPECT_EQ(e.tier, EtaTier::kMovingAverage);
  EXPECT_DOUBLE_EQ(e.remaining.count(), 75 * 1.05);
  EXPECT_DOUBLE_EQ(e.progress, 0.25);
}

TEST(EtaEstimatorTest, EstimateRunningUsesTheDefaultWithoutHistory) {
  RunningJobTiming t;
  t.elapsed = Seconds{60};
  t.default_duration = Seconds{240};
  EtaEstimate e = EstimateRunning(t);
  EXPECT_EQ(e.tier, EtaTier::kDefault);
  EXPECT_DOUBLE_EQ(e.remaining.count(), 180 * 1.05);
  EXPECT_DOUBLE_EQ(e.progress, 0.25);
}

TEST(EtaEstimatorTest, TimeBasedProgressNeverClaimsDone) {
  RunningJobTiming t;
  t.elapsed = Seconds{500};
  t.average_duration = Seconds{100};
  EtaEstimate e = EstimateRunning(t);
  EXPECT_DOUBLE_EQ(e.remaining.count(), 0);
  EXPECT_DOUBLE_EQ(e.progress, 0.99);
}

TEST(EtaEstimatorTest, EstimateQueuedUsesTheAverageOrTheDefault) {
  EtaEstimate with_history = EstimateQueued(Seconds{100}, Seconds{999}, 1);
  EXPECT_EQ(with_history.tier, EtaTier::kMovingAverage);
  EXPECT_DOUBLE_EQ(with_history.remaining.count(), 210);
  EXPECT_DOUBLE_EQ(with_history.progress, 0);

  EtaEstimate without = EstimateQueued(std::nullopt, Seconds{200}, 0);
  EXPECT_EQ(without.tier, EtaTier::kDefault);
  EXPECT_DOUBLE_EQ(without.remaining.count(), 210);
}

TEST(EtaEstimatorTest, TierNames) {
  EXPECT_STREQ(EtaTierName(EtaTier::kStructured), "structured");
  EXPECT_STREQ(EtaTierName(EtaTier::kHeuristic), "heuristic");
  EXPECT_STREQ(EtaTierName(EtaTier::kMovingAverage), "moving_average");
  EXPECT_STREQ(EtaTierName(EtaTier::kDefault), "default");
}

}  // namespace
}  // namespace tessera::jobs
