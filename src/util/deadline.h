// Cooperative cancellation: long work polls a Deadline and stops cleanly when it
// has passed, so a timeout never needs to kill a thread or the process.
#pragma once

#include <atomic>
#include <chrono>

namespace tessera {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  // A deadline that never expires on its own (it can still be cancelled).
  Deadline() = default;
  // Expires `budget` from now; a zero or negative budget means "no deadline".
  static Deadline After(std::chrono::milliseconds budget) {
    Deadline d;
    if (budget.count() > 0) {
      d.has_deadline_ = true;
      d.at_ = Clock::now() + budget;
    }
    return d;
  }

  // Thread-safe: may be called from libvips worker threads.
  bool Expired() const {
    if (cancelled_.load(std::memory_order_relaxed)) return true;
    return has_deadline_ && Clock::now() >= at_;
  }
  void Cancel() { cancelled_.store(true, std::memory_order_relaxed); }

  Deadline(const Deadline& other)
      : has_deadline_(other.has_deadline_), at_(other.at_), cancelled_(other.cancelled_.load()) {}
  Deadline& operator=(const Deadline& other) {
    has_deadline_ = other.has_deadline_;
    at_ = other.at_;
    cancelled_.store(other.cancelled_.load());
    return *this;
  }

 private:
  bool has_deadline_ = false;
  Clock::time_point at_{};
  std::atomic<bool> cancelled_{false};
};

// Milliseconds elapsed since `start`, as a double, for timings in logs.
inline double MillisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace tessera
