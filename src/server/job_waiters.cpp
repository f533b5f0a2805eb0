#include "server/job_waiters.h"

#include <vector>

namespace tessera::server {

JobWaiters::JobWaiters() : timer_thread_([this] { RunTimers(); }) {}

JobWaiters::~JobWaiters() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  timer_thread_.join();
}

void JobWaiters::Close() {
  std::multimap<Clock::time_point, Waiter> left;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    left.swap(deadlines_);
  }
  for (auto& [when, waiter] : left) waiter.done(false);
}

void JobWaiters::Watch(const std::string& id) {
  std::lock_guard lock(mutex_);
  watched_.insert(id);
}

void JobWaiters::Unwatch(const std::string& id) {
  std::lock_guard lock(mutex_);
  watched_.erase(id);
  finished_.erase(id);
}

void JobWaiters::Finished(const std::string& id) {
  std::vector<std::function<void(bool)>> ready;
  {
    std::lock_guard lock(mutex_);
    if (!watched_.count(id)) return;
    finished_.insert(id);
    for (auto it = deadlines_.begin(); it != deadlines_.end();) {
      if (it->second.id == id) {
        ready.push_back(std::move(it->second.done));
        it = deadlines_.erase(it);
      } else {
        ++it;
      }
    }
    if (!ready.empty()) {
      watched_.erase(id);
      finished_.erase(id);
    }
  }
  for (auto& done : ready) done(true);
}

void JobWaiters::WhenFinished(const std::string& id, std::chrono::milliseconds timeout,
                              std::function<void(bool)> done) {
  bool finished = true;
  {
    std::lock_guard lock(mutex_);
    if (closed_) {
      finished = false;
    } else if (!finished_.count(id)) {
      deadlines_.emplace(Clock::now() + timeout, Waiter{id, std::move(done)});
      changed_.notify_all();
      return;
    }
    watched_.erase(id);
    finished_.erase(id);
  }
  done(finished);
}

void JobWaiters::RunTimers() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (deadlines_.empty()) {
      changed_.wait(lock);
      continue;
    }
    auto first = deadlines_.begin();
    if (Clock::now() < first->first) {
      // A copy: while this waits, Close() may free every waiter, this one's
      // node included, and wait_until reads its deadline again on waking.
      const Clock::time_point deadline = first->first;
      changed_.wait_until(lock, deadline);
      continue;
    }
    Waiter expired = std::move(first->second);
    deadlines_.erase(first);
    watched_.erase(expired.id);
    finished_.erase(expired.id);
    lock.unlock();
    expired.done(false);
    lock.lock();
  }
}

}  // namespace tessera::server
