// Lets a request wait for a job to finish (POST /upscale?wait=true) without a
// thread of its own: the waiter is a callback, called once, when the job
// finishes or its timeout passes (one timer thread serves every waiter).
//
// Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace tessera::server {

class JobWaiters {
 public:
  JobWaiters();
  // Waiters left are dropped without a call (call Close() first to call them).
  ~JobWaiters();

  // Calls every waiter left with `finished` false, and any later one at once
  // (server stop: the connections they hold must be resumed while the event
  // loop that owns them still exists).
  void Close();

  // Remembers that `id` finishes from now on (call before submitting the job,
  // so a job that finishes at once is not missed).
  void Watch(const std::string& id);
  void Unwatch(const std::string& id);
  // The job finished (the scheduler's listener).
  void Finished(const std::string& id);
  // Calls `done(true)` once `id` finished (at once if it already did since
  // Watch), or `done(false)` after `timeout`; exactly once, from any thread; must
  // be quick. Unwatches `id` once called.
  void WhenFinished(const std::string& id, std::chrono::milliseconds timeout, std::function<void(bool)> done);

 private:
  using Clock = std::chrono::steady_clock;
  struct Waiter {
    std::string id;
    std::function<void(bool)> done;
  };
  void RunTimers();

  std::mutex mutex_;
  std::condition_variable changed_;
  std::set<std::string> watched_;
  std::set<std::string> finished_;
  std::multimap<Clock::time_point, Waiter> deadlines_;
  bool stopping_ = false;
  bool closed_ = false;
  std::thread timer_thread_;
};

}  // namespace tessera::server
