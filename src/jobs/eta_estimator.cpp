#include "jobs/eta_estimator.h"

#include <algorithm>
#include <cmath>

namespace tessera::jobs {
namespace {

// Time-based guesses never claim the job is done: only the job ending says so.
constexpr double kMaxTimeBasedProgress = 0.99;

Seconds NonNegative(Seconds s) { return (std::isfinite(s.count()) && s.count() > 0) ? s : Seconds{0}; }

double TimeBasedProgress(Seconds elapsed, Seconds expected) {
  if (expected.count() <= 0) return 0;
  return std::clamp(NonNegative(elapsed).count() / expected.count(), 0.0, kMaxTimeBasedProgress);
}

bool IsValid(const ProgressEvent& p) { return p.total > 0 && p.step >= 0 && p.step <= p.total; }

}  // namespace

const char* EtaTierName(EtaTier tier) {
  switch (tier) {
    case EtaTier::kStructured: return "structured";
    case EtaTier::kHeuristic: return "heuristic";
    case EtaTier::kMovingAverage: return "moving_average";
    case EtaTier::kDefault: return "default";
  }
  return "unknown";
}

std::optional<Seconds> MovingAverageDuration(std::span<const Seconds> recent_first, size_t window) {
  size_t limit = std::min(window, kMaxEtaHistory);
  double sum = 0;
  size_t used = 0;
  for (size_t i = 0; i < recent_first.size() && i < limit; ++i) {
    double d = recent_first[i].count();
    if (!std::isfinite(d) || d < 0) continue;
    sum += d;
    ++used;
  }
  if (used == 0) return std::nullopt;
  return Seconds{sum / static_cast<double>(used)};
}

Seconds QueuedEta(Seconds average, int64_t jobs_ahead) {
  double ahead = static_cast<double>(std::max<int64_t>(jobs_ahead, 0));
  return NonNegative(average) * (ahead + 1) * kEtaSafetyFactor;
}

Seconds RunningEta(Seconds average, Seconds elapsed) {
  return NonNegative(average - NonNegative(elapsed)) * kEtaSafetyFactor;
}

std::optional<Seconds> ProgressRemaining(const ProgressEvent& progress, Seconds elapsed) {
  if (!IsValid(progress) || progress.step == 0) return std::nullopt;
  double per_step = NonNegative(elapsed).count() / static_cast<double>(progress.step);
  return Seconds{static_cast<double>(progress.total - progress.step) * per_step};
}

EtaEstimate EstimateRunning(const RunningJobTiming& timing) {
  if (timing.progress) {
    if (auto remaining = ProgressRemaining(*timing.progress, timing.elapsed)) {
      EtaTier tier =
          timing.progress->source == ProgressEvent::Source::kStructured ? EtaTier::kStructured : EtaTier::kHeuristic;
      return {*remaining, tier, ProgressFraction(*timing.progress)};
    }
  }
  EtaTier tier = timing.average_duration ? EtaTier::kMovingAverage : EtaTier::kDefault;
  Seconds expected = NonNegative(timing.average_duration.value_or(timing.default_duration));
  return {RunningEta(expected, timing.elapsed), tier, TimeBasedProgress(timing.elapsed, expected)};
}

EtaEstimate EstimateQueued(std::optional<Seconds> average_duration, Seconds default_duration, int64_t jobs_ahead) {
  EtaTier tier = average_duration ? EtaTier::kMovingAverage : EtaTier::kDefault;
  return {QueuedEta(average_duration.value_or(default_duration), jobs_ahead), tier, 0};
}

}  // namespace tessera::jobs
