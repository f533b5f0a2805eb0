// The loaded models a process keeps for its next requests: an LRU bounded by
// count and by resident bytes, with single-flight loading and stats.
//
//   runtime::ModelCache<engine::ModelUpscaler> cache({.max_models = 3});
//   auto model = cache.GetOrLoad("realesr-animevideov3-x2", [&]() -> Result<...Loaded> { ... });
//
// Contract:
// - Thread-safe. A loader runs without the cache's lock held, on the calling
//   thread; concurrent GetOrLoad calls for a name already loading wait for that
//   load and share its result (one load, however many callers).
// - A failed load is not cached: the callers that shared it get its error, and
//   the next call tries again.
// - After an insert, least-recently-used entries are evicted until the count and
//   byte bounds hold again; the entry just inserted is never evicted, so a model
//   bigger than the byte bound on its own still loads (and then stays alone).
// - Eviction drops only the cache's reference: callers holding the model keep a
//   working object until they let go of it.
// ModelCacheCore is the type-erased engine of it; ModelCache<T> is the typed face.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "util/status.h"

namespace tessera::runtime {

struct ModelCacheLimits {
  size_t max_models = 3;   // at least 1 entry is always kept
  uint64_t max_bytes = 0;  // 0: no byte bound
};

struct ModelCacheStats {
  uint64_t hits = 0;           // served without loading: cached, or joined a load already under way
  uint64_t misses = 0;         // had to load
  uint64_t joined = 0;         // of the hits, those that waited for another caller's load
  uint64_t loads = 0;          // successful loads
  uint64_t load_failures = 0;  // loads that returned an error
  uint64_t evictions = 0;
  uint64_t resident_bytes = 0;  // sum over the entries held now
  size_t entries = 0;
  std::map<std::string, double> load_ms;  // by model name: its last successful load
};

class ModelCacheCore {
 public:
  struct Loaded {
    std::shared_ptr<const void> value;
    uint64_t bytes = 0;  // what the value keeps resident
  };
  using Loader = std::function<Result<Loaded>()>;

  explicit ModelCacheCore(ModelCacheLimits limits);
  ModelCacheCore(const ModelCacheCore&) = delete;
  ModelCacheCore& operator=(const ModelCacheCore&) = delete;

  Result<std::shared_ptr<const void>> GetOrLoad(const std::string& name, const Loader& load);

  bool Contains(const std::string& name) const;
  // Names held now, most recently used first.
  std::vector<std::string> Names() const;
  ModelCacheStats Stats() const;
  const ModelCacheLimits& limits() const { return limits_; }

 private:
  struct Entry {
    std::string name;
    std::shared_ptr<const void> value;
    uint64_t bytes = 0;
  };
  // One load under way; callers for the same name wait on it.
  struct Flight {
    bool done = false;
    Status status;
    std::shared_ptr<const void> value;
  };

  void EvictLocked(const std::string& keep);

  const ModelCacheLimits limits_;
  mutable std::mutex mutex_;
  std::condition_variable flight_done_;
  std::list<Entry> lru_;  // front: most recently used
  std::map<std::string, std::list<Entry>::iterator> index_;
  std::map<std::string, std::shared_ptr<Flight>> flights_;
  ModelCacheStats stats_;
};

template <typename T>
class ModelCache {
 public:
  struct Loaded {
    std::shared_ptr<const T> model;
    uint64_t bytes = 0;
  };
  using Loader = std::function<Result<Loaded>()>;

  explicit ModelCache(ModelCacheLimits limits = {}) : core_(limits) {}

  Result<std::shared_ptr<const T>> GetOrLoad(const std::string& name, const Loader& load) {
    auto erased = core_.GetOrLoad(name, [&]() -> Result<ModelCacheCore::Loaded> {
      Result<Loaded> loaded = load();
      if (!loaded.ok()) return loaded.status();
      return ModelCacheCore::Loaded{std::move(loaded->model), loaded->bytes};
    });
    if (!erased.ok()) return erased.status();
    return std::static_pointer_cast<const T>(std::move(erased).value());
  }

  bool Contains(const std::string& name) const { return core_.Contains(name); }
  std::vector<std::string> Names() const { return core_.Names(); }
  ModelCacheStats Stats() const { return core_.Stats(); }
  const ModelCacheLimits& limits() const { return core_.limits(); }

 private:
  ModelCacheCore core_;
};

}  // namespace tessera::runtime
