// Whole-file reads and crash-safe writes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "util/status.h"

namespace tessera {

// kNotFound when the file does not exist, kIo for other failures; kLimit when it
// is larger than `max_bytes`.
Result<std::vector<uint8_t>> ReadFileBytes(const std::string& path, uint64_t max_bytes = UINT64_MAX);

// Writes to a temporary file in the same directory, fsyncs it and renames it over
// `path`: readers see the old file or the whole new one, never half of it.
Status WriteFileAtomically(const std::string& path, std::span<const uint8_t> bytes);

}  // namespace tessera
