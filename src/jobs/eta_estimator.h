// Time estimates for generation jobs: the three tiers of seed 001, section 8.
//
//   tier A (structured) and tier B (heuristic): the generator reported progress
//       (src/jobs/progress_parser.h) — remaining = (total - step) * (elapsed / step).
//   tier C (moving average): the mean duration of the device's last jobs, at most 50
//       (the seed asks the history to settle over the last 10–50) —
//         queued:  avg * (jobs_ahead + 1) * 1.05
//         running: max(0, avg - elapsed) * 1.05
//   With no history at all, a configured default duration stands in for the average.
//
// Everything here is a pure function of its arguments: callers pass durations read
// from the store and the elapsed time from their own clock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "jobs/progress_parser.h"

namespace tessera::jobs {

using Seconds = std::chrono::duration<double>;

// The seed's margin on time-based estimates: better a little late than early.
inline constexpr double kEtaSafetyFactor = 1.05;
// At most this many recent durations enter the moving average.
inline constexpr size_t kMaxEtaHistory = 50;

// Which tier produced an estimate.
enum class EtaTier {
  kStructured,     // A: TESSERA_PROGRESS lines
  kHeuristic,      // B: tqdm bars or "step n/m" text
  kMovingAverage,  // C: average of the device's recent job durations
  kDefault,        // C with no history: the configured default duration
};

// "structured", "heuristic", "moving_average", "default", for logs and the API.
const char* EtaTierName(EtaTier tier);

// Tier C: the mean of the most recent durations (most recent first), using at most
// min(window, kMaxEtaHistory) of them. Negative or non-finite entries are skipped.
// nullopt when nothing usable is left: "unknown", not zero.
std::optional<Seconds> MovingAverageDuration(std::span<const Seconds> recent_first, size_t window = kMaxEtaHistory);

// avg * (jobs_ahead + 1) * 1.05; a negative jobs_ahead counts as 0.
Seconds QueuedEta(Seconds average, int64_t jobs_ahead);
// max(0, avg - elapsed) * 1.05.
Seconds RunningEta(Seconds average, Seconds elapsed);

// Tiers A/B: (total - step) * (elapsed / step). nullopt when step is 0 (no rate yet)
// or the event is not a valid one. Elapsed includes the generator's start-up, so
// early estimates lean long; they converge as steps accumulate.
std::optional<Seconds> ProgressRemaining(const ProgressEvent& progress, Seconds elapsed);

struct EtaEstimate {
  Seconds remaining{0};  // >= 0
  EtaTier tier = EtaTier::kDefault;
  // For the API: how far along the job is, in [0, 1]. step / total when the estimate
  // came from a progress event; otherwise elapsed / expected duration, capped at 0.99
  // because a time-based guess cannot know the job is done.
  double progress = 0;
};

struct RunningJobTiming {
  Seconds elapsed{0};                       // since the job started running
  std::optional<ProgressEvent> progress;    // latest event from its output, if any
  std::optional<Seconds> average_duration;  // MovingAverageDuration of its device
  Seconds default_duration{0};              // used when average_duration is unknown
};

// The best tier available for a running job: the progress event when it has a
// step > 0, else the moving average, else the default duration.
EtaEstimate EstimateRunning(const RunningJobTiming& timing);

// A queued job: tier C (or the default) only, progress 0.
EtaEstimate EstimateQueued(std::optional<Seconds> average_duration, Seconds default_duration, int64_t jobs_ahead);

}  // namespace tessera::jobs
