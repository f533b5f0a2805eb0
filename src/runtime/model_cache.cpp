#include "runtime/model_cache.h"

#include <chrono>

#include "util/deadline.h"
#include "util/log.h"

namespace tessera::runtime {

ModelCacheCore::ModelCacheCore(ModelCacheLimits limits) : limits_(limits) {}

Result<std::shared_ptr<const void>> ModelCacheCore::GetOrLoad(const std::string& name, const Loader& load) {
  std::shared_ptr<Flight> flight;
  {
    std::unique_lock lock(mutex_);
    if (auto it = index_.find(name); it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      ++stats_.hits;
      return it->second->value;
    }
    if (auto it = flights_.find(name); it != flights_.end()) {
      // Someone is loading it: wait for that load and share its outcome.
      std::shared_ptr<Flight> joined = it->second;
      ++stats_.hits;
      ++stats_.joined;
      flight_done_.wait(lock, [&] { return joined->done; });
      if (!joined->status.ok()) return joined->status;
      if (auto held = index_.find(name); held != index_.end()) lru_.splice(lru_.begin(), lru_, held->second);
      return joined->value;
    }
    ++stats_.misses;
    flight = std::make_shared<Flight>();
    flights_[name] = flight;
  }

  // The load runs unlocked: other names stay servable meanwhile.
  const auto started = std::chrono::steady_clock::now();
  Result<Loaded> loaded = InternalError("model loader threw");
  try {
    loaded = load();
  } catch (const std::exception& e) {
    loaded = InternalError(std::string("loading model '") + name + "' threw: " + e.what());
  }
  if (loaded.ok() && loaded->value == nullptr) loaded = InternalError("loader for '" + name + "' returned no model");
  const double ms = MillisSince(started);

  std::lock_guard lock(mutex_);
  flights_.erase(name);
  flight->done = true;
  if (!loaded.ok()) {
    ++stats_.load_failures;
    flight->status = loaded.status();
    flight_done_.notify_all();
    return loaded.status();
  }
  ++stats_.loads;
  stats_.load_ms[name] = ms;
  flight->value = loaded->value;
  lru_.push_front(Entry{name, loaded->value, loaded->bytes});
  index_[name] = lru_.begin();
  stats_.resident_bytes += loaded->bytes;
  EvictLocked(name);
  flight_done_.notify_all();
  return loaded->value;
}

void ModelCacheCore::EvictLocked(const std::string& keep) {
  const size_t max_models = limits_.max_models == 0 ? 1 : limits_.max_models;
  auto over = [&] {
    return lru_.size() > max_models || (limits_.max_bytes > 0 && stats_.resident_bytes > limits_.max_bytes);
  };
  while (lru_.size() > 1 && over()) {
    auto victim = std::prev(lru_.end());
    if (victim->name == keep) break;  // cannot happen while keep is at the front; kept as a guard
    LogInfo("model_evicted")
        .Field("model", victim->name)
        .Field("bytes", victim->bytes)
        .Field("reason", lru_.size() > max_models ? "count" : "bytes");
    stats_.resident_bytes -= victim->bytes;
    ++stats_.evictions;
    index_.erase(victim->name);
    lru_.erase(victim);
  }
}

bool ModelCacheCore::Contains(const std::string& name) const {
  std::lock_guard lock(mutex_);
  return index_.contains(name);
}

std::vector<std::string> ModelCacheCore::Names() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> names;
  for (const Entry& e : lru_) names.push_back(e.name);
  return names;
}

ModelCacheStats ModelCacheCore::Stats() const {
  std::lock_guard lock(mutex_);
  ModelCacheStats s = stats_;
  s.entries = lru_.size();
  return s;
}

}  // namespace tessera::runtime
