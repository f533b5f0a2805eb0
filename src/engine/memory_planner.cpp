#include "engine/memory_planner.h"

#include <algorithm>
#include <string>

#include "util/byte_size.h"
#include "util/log.h"
#include "util/process_memory.h"

namespace tessera::engine {
MemoryBudget::Reservation& MemoryBudget::Reservation::operator=(Reservation&& other) noexcept {
  if (this != &other) {
    Release();
    budget_ = other.budget_;
    bytes_ = other.bytes_;
    other.budget_ = nullptr;
    other.bytes_ = 0;
  }
  return *this;
}

void MemoryBudget::Reservation::Release() {
  if (budget_ != nullptr) budget_->Give(bytes_);
  budget_ = nullptr;
  bytes_ = 0;
}

Result<MemoryBudget::Reservation> MemoryBudget::Reserve(uint64_t bytes) {
  std::lock_guard lock(mutex_);
  if (bytes > limit_ || used_ > limit_ - bytes) {
    return Status(StatusCode::kOutOfMemory, "memory budget: a chunk needs " + FormatBytes(bytes) + ", " +
                                                FormatBytes(limit_ - std::min(used_, limit_)) + " of " +
                                                FormatBytes(limit_) + " left");
  }
  used_ += bytes;
  Reservation reservation;
  reservation.budget_ = this;
  reservation.bytes_ = bytes;
  return reservation;
}

uint64_t MemoryBudget::used() const {
  std::lock_guard lock(mutex_);
  return used_;
}

uint64_t MemoryBudget::available() const {
  std::lock_guard lock(mutex_);
  return limit_ - std::min(used_, limit_);
}

void MemoryBudget::Give(uint64_t bytes) {
  std::lock_guard lock(mutex_);
  used_ -= std::min(used_, bytes);
}

ChunkPlanner::ChunkPlanner(MemoryPlanOptions options, uint64_t tile_cost_bytes)
    : options_(std::move(options)), tile_cost_bytes_(std::max<uint64_t>(tile_cost_bytes, 1)) {
  // The cap is taken once, when the job's plan is made: later chunks may get
  // less when memory is short, never more when it frees up.
  if (options_.max_chunk_bytes > 0) {
    cap_bytes_ = options_.max_chunk_bytes;
  } else if (std::optional<uint64_t> free = ReadFree()) {
    cap_bytes_ = static_cast<uint64_t>(static_cast<double>(*free) * options_.fraction());
  } else {
    cap_bytes_ = tile_cost_bytes_;  // no reading and no flag: one tile at a time, as without a planner
  }
}

std::optional<uint64_t> ChunkPlanner::ReadFree() const {
  return options_.probe ? options_.probe() : AvailableMemoryBytes();
}

size_t ChunkPlanner::NextChunk(size_t tiles_left) {
  if (tiles_left == 0) return 0;
  std::optional<uint64_t> free = ReadFree();
  uint64_t budget = cap_bytes_;
  if (free) {
    budget = std::min(budget, static_cast<uint64_t>(static_cast<double>(*free) * options_.fraction()));
  } else if (!warned_no_probe_) {
    warned_no_probe_ = true;
    LogInfo("memory_probe_unavailable").Field("detail", "memory probe unavailable, keeping plan hints");
  }
  last_free_bytes_ = free.value_or(0);
  last_budget_bytes_ = budget;
  const size_t tiles = static_cast<size_t>(std::clamp<uint64_t>(budget / tile_cost_bytes_, 1, tiles_left));
  LogDebug("memory_refresh")
      .Field("free_mb", free ? ToMiB(*free) : -1.0)
      .Field("budget_mb", ToMiB(budget))
      .Field("tiles", static_cast<uint64_t>(tiles))
      .Field("cap_mb", ToMiB(cap_bytes_))
      .Field("safe_mode", options_.safe_mode);
  return tiles;
}

bool ChunkPlanner::ShrinkAfterOom(size_t tiles, const Status& why) {
  if (retries_used_ >= options_.oom_retries) return false;
  ++retries_used_;
  // ×0.7, but not below the floor (one tile, 16 MiB); a chunk already under the
  // floor is retried as it is (the memory may have been short for a moment).
  const uint64_t chunk = static_cast<uint64_t>(std::max<size_t>(tiles, 1)) * tile_cost_bytes_;
  const uint64_t floor = std::max(kMinChunkBytes, tile_cost_bytes_);
  const uint64_t shrunk =
      std::min(chunk, std::max(static_cast<uint64_t>(static_cast<double>(chunk) * kOomShrinkFactor), floor));
  cap_bytes_ = std::min(cap_bytes_, shrunk);
  const uint64_t next_tiles = std::max<uint64_t>(cap_bytes_ / tile_cost_bytes_, 1);
  LogWarn("oom_retry")
      .Field("retry", std::to_string(retries_used_) + "/" + std::to_string(options_.oom_retries))
      .Field("chunk_mb", ToMiB(cap_bytes_))
      .Field("tiles", next_tiles)
      .Field("free_mb", ToMiB(last_free_bytes_))
      .Field("error", why.message());
  return true;
}

OomOutcome AfterOomRetriesSpent(bool on_gpu, bool gpu_fallback_allowed) {
  return on_gpu && gpu_fallback_allowed ? OomOutcome::kFallBackToCpu : OomOutcome::kFail;
}

}  // namespace tessera::engine
