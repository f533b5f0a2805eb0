// How many tiles a model runs together, from the memory free right now
// (seed 002: dynamic memory). A job's tiles are run in chunks; before each chunk
// the planner reads the free memory and sizes the chunk; an out-of-memory on a
// chunk shrinks it and the chunk runs again. The tile grid itself never changes,
// so the output is the same bytes whatever the chunks were.
//
//   budget  = free now × fraction (0.45; 0.28 in safe mode), never above the cap
//   cap     = --max-chunk-mb when set, else the first budget of the job; it only
//             ever goes down (an out-of-memory lowers it), never back up
//   tiles   = budget / cost of one tile, at least 1, at most the tiles left
//   on OOM  = chunk bytes × 0.7 (floor: one tile, 16 MiB), up to --oom-retries times
//
// The cost of a tile is measured by the graph executor's own accounting of live
// blobs on the first tile of a shape (RunStats::peak_live_bytes), plus the tile's
// input and output kept for the chunk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>

#include "util/status.h"

namespace tessera::engine {

inline constexpr double kNormalMemoryFraction = 0.45;
inline constexpr double kSafeMemoryFraction = 0.28;
inline constexpr double kOomShrinkFactor = 0.7;
inline constexpr uint64_t kMinChunkBytes = 16ull << 20;

// Free bytes the device has for this job now; nullopt when it cannot tell.
using MemoryProbeFn = std::function<std::optional<uint64_t>()>;

struct MemoryPlanOptions {
  bool safe_mode = false;        // --safe-mode / TESSERA_SAFE_MODE=1: fraction 0.28
  uint64_t max_chunk_bytes = 0;  // --max-chunk-mb; 0 = no cap but the first budget
  int oom_retries = 3;           // --oom-retries
  MemoryProbeFn probe;           // empty: the CPU probe (AvailableMemoryBytes)

  double fraction() const { return safe_mode ? kSafeMemoryFraction : kNormalMemoryFraction; }
};

// Bytes the process has promised to running chunks, against a limit (the
// worker's --ram-budget). Reserve() is the gate every chunk's memory goes
// through: kOutOfMemory when the limit would be passed. Thread-safe.
class MemoryBudget {
 public:
  explicit MemoryBudget(uint64_t limit_bytes) : limit_(limit_bytes) {}

  // Holds `bytes` of the budget until destroyed.
  class Reservation {
   public:
    Reservation() = default;
    Reservation(Reservation&& other) noexcept { *this = std::move(other); }
    Reservation& operator=(Reservation&& other) noexcept;
    ~Reservation() { Release(); }
    void Release();
    uint64_t bytes() const { return bytes_; }

   private:
    friend class MemoryBudget;
    MemoryBudget* budget_ = nullptr;
    uint64_t bytes_ = 0;
  };

  Result<Reservation> Reserve(uint64_t bytes);
  uint64_t limit() const { return limit_; }
  uint64_t used() const;
  uint64_t available() const;

 private:
  void Give(uint64_t bytes);

  const uint64_t limit_;
  mutable std::mutex mutex_;
  uint64_t used_ = 0;
};

// The chunk sizes of one job. Not thread-safe: one job, one planner.
class ChunkPlanner {
 public:
  ChunkPlanner(MemoryPlanOptions options, uint64_t tile_cost_bytes);

  // Tiles to run in the next chunk (1..tiles_left). Reads the probe; logs
  // event=memory_refresh (debug) with free_mb budget_mb tiles cap_mb safe_mode.
  size_t NextChunk(size_t tiles_left);

  // After a chunk of `tiles` ran out of memory: shrinks the chunk (and the cap)
  // and returns true to retry, or false when the retries are spent or the
  // chunk was already one tile at the floor. Logs event=oom_retry (warn).
  bool ShrinkAfterOom(size_t tiles, const Status& why);

  // The measured cost replacing an estimate; the cap and the retries spent stay.
  void set_tile_cost_bytes(uint64_t bytes) { tile_cost_bytes_ = bytes > 0 ? bytes : 1; }

  uint64_t cap_bytes() const { return cap_bytes_; }
  uint64_t tile_cost_bytes() const { return tile_cost_bytes_; }
  int retries_used() const { return retries_used_; }
  // The budget the last NextChunk() used, and the free memory it read (0: unknown).
  uint64_t last_budget_bytes() const { return last_budget_bytes_; }
  uint64_t last_free_bytes() const { return last_free_bytes_; }

 private:
  std::optional<uint64_t> ReadFree() const;

  MemoryPlanOptions options_;
  uint64_t tile_cost_bytes_;
  uint64_t cap_bytes_ = 0;  // 0 until the first NextChunk() when no --max-chunk-mb
  int retries_used_ = 0;
  uint64_t last_budget_bytes_ = 0;
  uint64_t last_free_bytes_ = 0;
  bool warned_no_probe_ = false;
};

// What to do when a job's chunks still run out of memory after every retry.
enum class OomOutcome { kFallBackToCpu, kFail };
OomOutcome AfterOomRetriesSpent(bool on_gpu, bool gpu_fallback_allowed);

}  // namespace tessera::engine
