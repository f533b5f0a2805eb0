// What the kernel says about this process's memory and the machine's free memory.
// Linux only (/proc and cgroup v2); every reader returns 0 / nullopt when it cannot
// tell rather than guessing.
#pragma once

#include <cstdint>
#include <optional>

namespace tessera {

// Resident set size now (VmRSS), in bytes.
uint64_t CurrentRssBytes();
// Highest resident set size since start or since the last ResetPeakRss() (VmHWM).
uint64_t PeakRssBytes();
// Resets the kernel's peak-RSS mark (writes 5 to /proc/self/clear_refs) so that the
// next PeakRssBytes() covers only what follows. False when the kernel refuses.
bool ResetPeakRss();

// Memory this process could still use: MemAvailable, bounded by the cgroup v2 limit
// (memory.max - memory.current) when one is set. nullopt when neither can be read.
std::optional<uint64_t> AvailableMemoryBytes();

}  // namespace tessera
