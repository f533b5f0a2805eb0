// A three-stage pipeline over the items of a batch: while the caller's thread
// runs the middle stage (inference) on item n, one thread runs the first stage
// (decode) on item n+1 and another the last stage (encode) on item n-1. Items
// travel in order through bounded queues, so a fast stage waits for a slow one
// instead of piling up work in memory (backpressure).
//
// Errors and cancellation: the first stage that fails cancels both queues, which
// wakes every stage blocked on them; the run then returns the error of the
// lowest-numbered item that failed. No stage can wait forever on another that
// has stopped. An exception escaping a stage (std::bad_alloc...) is turned into
// an error value, never std::terminate on a worker thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <new>
#include <optional>
#include <thread>
#include <utility>

#include "util/status.h"

namespace tessera::runtime {

// A FIFO of at most `capacity` items between one producer and one consumer thread.
template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : capacity_(capacity > 0 ? capacity : 1) {}

  // Blocks while the queue is full. False when it was cancelled (the item is dropped).
  bool Push(T item) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return cancelled_ || items_.size() < capacity_; });
    if (cancelled_) return false;
    items_.push_back(std::move(item));
    if (items_.size() > high_water_) high_water_ = items_.size();
    changed_.notify_all();
    return true;
  }

  // Blocks while the queue is empty and open. Empty once closed and drained, or cancelled.
  std::optional<T> Pop() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return cancelled_ || closed_ || !items_.empty(); });
    if (cancelled_ || items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    changed_.notify_all();
    return item;
  }

  // The producer is done: Pop() returns what is left, then nothing.
  void Close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    changed_.notify_all();
  }

  // Stop now: blocked and later Push() and Pop() calls return at once; queued items are dropped.
  void Cancel() {
    std::lock_guard lock(mutex_);
    cancelled_ = true;
    items_.clear();
    changed_.notify_all();
  }

  // The most items the queue ever held at once.
  size_t high_water() const {
    std::lock_guard lock(mutex_);
    return high_water_;
  }

 private:
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<T> items_;
  size_t high_water_ = 0;
  bool closed_ = false;
  bool cancelled_ = false;
};

// Wall time spent inside each stage, summed over the items (milliseconds).
struct PipelineTimings {
  double first_ms = 0;
  double second_ms = 0;
  double third_ms = 0;
};

namespace pipeline_detail {

// Keeps the error of the lowest-numbered failed item.
class FirstError {
 public:
  void Record(size_t index, Status status) {
    std::lock_guard lock(mutex_);
    if (!index_ || index < *index_) {
      index_ = index;
      status_ = std::move(status);
    }
  }
  Status status() const {
    std::lock_guard lock(mutex_);
    return index_ ? status_ : Status::Ok();
  }

 private:
  mutable std::mutex mutex_;
  std::optional<size_t> index_;
  Status status_;
};

// Runs `stage`, turning an escaping exception into an error value.
template <typename F>
auto Guarded(F&& stage) -> decltype(stage()) {
  try {
    return stage();
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kOutOfMemory, "out of memory");
  } catch (const std::exception& e) {
    return InternalError(std::string("unexpected exception: ") + e.what());
  }
}

inline double MsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace pipeline_detail

// Runs items 0..count-1 through first → second → third. `first` and `third` run
// on their own threads, `second` on the caller's; each stage sees the items in
// order. `queue_depth` items at most wait between two stages. Returns Ok when
// every item went through every stage, else the error of the lowest-numbered
// item that failed (items after a failure may not have run at all).
template <typename A, typename B>
Status RunThreeStagePipeline(size_t count, size_t queue_depth, const std::function<Result<A>(size_t)>& first,
                             const std::function<Result<B>(size_t, A)>& second,
                             const std::function<Status(size_t, B)>& third, PipelineTimings* timings = nullptr) {
  using pipeline_detail::Guarded;
  using pipeline_detail::MsSince;
  BoundedQueue<std::pair<size_t, A>> firsts(queue_depth);
  BoundedQueue<std::pair<size_t, B>> seconds(queue_depth);
  pipeline_detail::FirstError error;
  auto fail = [&](size_t index, Status status) {
    error.Record(index, std::move(status));
    firsts.Cancel();
    seconds.Cancel();
  };
  PipelineTimings spent;

  std::thread producer([&] {
    for (size_t i = 0; i < count; ++i) {
      auto start = std::chrono::steady_clock::now();
      Result<A> a = Guarded([&]() -> Result<A> { return first(i); });
      spent.first_ms += MsSince(start);
      if (!a.ok()) return fail(i, a.status());
      if (!firsts.Push({i, std::move(a).value()})) return;
    }
    firsts.Close();
  });
  std::thread consumer([&] {
    while (auto item = seconds.Pop()) {
      auto start = std::chrono::steady_clock::now();
      Status done = Guarded([&]() -> Status { return third(item->first, std::move(item->second)); });
      spent.third_ms += MsSince(start);
      if (!done.ok()) return fail(item->first, std::move(done));
    }
  });
  while (auto item = firsts.Pop()) {
    auto start = std::chrono::steady_clock::now();
    Result<B> b = Guarded([&]() -> Result<B> { return second(item->first, std::move(item->second)); });
    spent.second_ms += MsSince(start);
    if (!b.ok()) {
      fail(item->first, b.status());
      break;
    }
    if (!seconds.Push({item->first, std::move(b).value()})) break;
  }
  seconds.Close();
  producer.join();
  consumer.join();
  if (timings != nullptr) *timings = spent;
  return error.status();
}

}  // namespace tessera::runtime
