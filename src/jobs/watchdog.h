// Runs an action once if it is not disarmed in time: kills a hung worker, stops a
// generator past its timeout. The waiting is on a condition variable, so disarming
// returns at once.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace tessera::jobs {

class Watchdog {
 public:
  // A timeout of zero or less never fires.
  Watchdog(std::chrono::milliseconds timeout, std::function<void()> on_timeout)
      : on_timeout_(std::move(on_timeout)) {
    if (timeout.count() <= 0) return;
    thread_ = std::thread([this, timeout] {
      std::unique_lock lock(mutex_);
      if (!disarmed_cv_.wait_for(lock, timeout, [this] { return disarmed_; })) {
        fired_ = true;
        lock.unlock();
        on_timeout_();
      }
    });
  }
  ~Watchdog() { Disarm(); }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Returns once the watchdog can no longer fire (joins an action in progress).
  void Disarm() {
    {
      std::lock_guard lock(mutex_);
      disarmed_ = true;
    }
    disarmed_cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  bool fired() {
    std::lock_guard lock(mutex_);
    return fired_;
  }

 private:
  std::function<void()> on_timeout_;
  std::mutex mutex_;
  std::condition_variable disarmed_cv_;
  bool disarmed_ = false;
  bool fired_ = false;
  std::thread thread_;
};

}  // namespace tessera::jobs
