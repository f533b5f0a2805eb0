#include "server/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace tessera::server {
namespace {

// Float slack so that exactly one second at one token a second counts as one token.
constexpr double kEpsilon = 1e-9;
// Longer than any sensible refill; keeps time arithmetic far from overflow.
constexpr double kMaxSeconds = 10.0 * 365 * 24 * 3600;
constexpr double kMinRefillPerSecond = 1.0 / kMaxSeconds;

RateLimiter::Clock::duration SecondsToDuration(double seconds) {
  seconds = std::clamp(seconds, 0.0, kMaxSeconds);
  return std::chrono::duration_cast<RateLimiter::Clock::duration>(std::chrono::duration<double>(seconds));
}

double SecondsBetween(RateLimiter::Clock::time_point from, RateLimiter::Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

}  // namespace

Status ValidateRateLimiterOptions(const RateLimiterOptions& options) {
  if (!std::isfinite(options.capacity) || options.capacity < 1) {
    return InvalidError("rate limit capacity must be at least 1 request");
  }
  if (!std::isfinite(options.refill_per_second) || options.refill_per_second < kMinRefillPerSecond) {
    return InvalidError("rate limit refill must be a positive number of requests per second");
  }
  if (options.max_clients < 1) return InvalidError("rate limit max_clients must be at least 1");
  return Status::Ok();
}

RateLimiter::RateLimiter(const RateLimiterOptions& options)
    : capacity_(std::isfinite(options.capacity) ? std::max(options.capacity, 1.0) : 1.0),
      refill_per_second_(std::isfinite(options.refill_per_second)
                             ? std::max(options.refill_per_second, kMinRefillPerSecond)
                             : kMinRefillPerSecond),
      max_clients_(std::max<size_t>(options.max_clients, 1)),
      refill_time_(SecondsToDuration(capacity_ / refill_per_second_)) {}

void RateLimiter::Refill(Bucket& bucket, Clock::time_point now) const {
  if (now <= bucket.updated) return;
  bucket.tokens = std::min(capacity_, bucket.tokens + SecondsBetween(bucket.updated, now) * refill_per_second_);
  bucket.updated = now;
}

RateLimiter::Clock::time_point RateLimiter::FullAt(const Bucket& bucket) const {
  return bucket.updated + SecondsToDuration((capacity_ - bucket.tokens) / refill_per_second_);
}

void RateLimiter::SweepFull(Clock::time_point now) {
  std::erase_if(buckets_, [&](const auto& entry) { return FullAt(entry.second) <= now; });
  last_sweep_ = now;
}

void RateLimiter::MakeRoom(Clock::time_point now) {
  SweepFull(now);
  if (buckets_.size() < max_clients_) return;
  auto nearest_full = std::min_element(buckets_.begin(), buckets_.end(), [&](const auto& a, const auto& b) {
    return FullAt(a.second) < FullAt(b.second);
  });
  buckets_.erase(nearest_full);
}

RateLimiter::Decision RateLimiter::Take(const std::string& client, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (now - last_sweep_ >= refill_time_) SweepFull(now);

  auto it = buckets_.find(client);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_clients_) MakeRoom(now);
    it = buckets_.emplace(client, Bucket{capacity_, now}).first;
  } else {
    Refill(it->second, now);
  }

  Bucket& bucket = it->second;
  Decision decision;
  if (bucket.tokens + kEpsilon >= 1) {
    bucket.tokens = std::max(0.0, bucket.tokens - 1);
    decision.allowed = true;
    decision.remaining = static_cast<int64_t>(std::floor(bucket.tokens + kEpsilon));
    return decision;
  }
  double wait = std::min((1 - bucket.tokens) / refill_per_second_, kMaxSeconds);
  decision.retry_after_seconds = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait - kEpsilon)));
  return decision;
}

size_t RateLimiter::tracked_clients() const {
  std::lock_guard<std::mutex> lock(mu_);
  return buckets_.size();
}

}  // namespace tessera::server
