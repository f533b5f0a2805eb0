// Per-client request limits (seed 001, section 12: quotas and rate limits when the
// service is shared): one token bucket per client key (an API token or an address).
//
// A bucket holds up to `capacity` tokens and refills at `refill_per_second`; each
// request takes one. A client's first request finds a full bucket, so `capacity`
// is the burst a client may send at once and `refill_per_second` its sustained rate.
//
// Memory is bounded: a bucket that has refilled to full carries no information (a
// new client starts full too), so such buckets are dropped on periodic sweeps; and
// the number of tracked clients never exceeds `max_clients` — when it would, the
// bucket closest to full is dropped, which at worst hands that client its remaining
// refill early.
//
// Thread-safe. Time is passed in by the caller, so tests need no clock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "util/status.h"

namespace tessera::server {

struct RateLimiterOptions {
  double capacity = 60;          // burst, in requests; >= 1
  double refill_per_second = 1;  // sustained rate; > 0
  size_t max_clients = 100'000;  // >= 1
};

// kInvalid when an option is out of range (for checking configuration at start-up).
Status ValidateRateLimiterOptions(const RateLimiterOptions& options);

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  struct Decision {
    bool allowed = false;
    // When refused: whole seconds until a request would be allowed, >= 1, for a
    // Retry-After header. 0 when allowed.
    int64_t retry_after_seconds = 0;
    // Whole requests the client may still make right now, for X-RateLimit-Remaining.
    int64_t remaining = 0;
  };

  // Options must pass ValidateRateLimiterOptions; out-of-range values are clamped
  // to the nearest valid one.
  explicit RateLimiter(const RateLimiterOptions& options);

  // Takes one token from `client`'s bucket if it has one. A `now` earlier than a
  // previous call's (clock skew between callers) refills nothing.
  Decision Take(const std::string& client, Clock::time_point now);

  // Clients currently tracked (for tests and metrics).
  size_t tracked_clients() const;

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point updated;
  };

  void Refill(Bucket& bucket, Clock::time_point now) const;
  Clock::time_point FullAt(const Bucket& bucket) const;
  // Drops every bucket that is full at `now`.
  void SweepFull(Clock::time_point now);
  // Makes room for one more client when at max_clients.
  void MakeRoom(Clock::time_point now);

  const double capacity_;
  const double refill_per_second_;
  const size_t max_clients_;
  // The time an empty bucket takes to refill: the sweep period.
  const Clock::duration refill_time_;

  mutable std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
  Clock::time_point last_sweep_{};
};

}  // namespace tessera::server
