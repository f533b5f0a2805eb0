// Human-friendly byte sizes for flags: "512MiB", "2GiB", "1.5G", "64k", "1000000".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.h"

namespace tessera {

// Suffixes k/K/KiB, M/MiB, G/GiB, T/TiB are powers of 1024; KB/MB/GB powers of 1000.
Result<uint64_t> ParseByteSize(std::string_view text);

// "12.3 MiB"-style text for messages.
std::string FormatBytes(uint64_t bytes);

// Mebibytes as a double, for logs.
inline double ToMiB(uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

}  // namespace tessera
