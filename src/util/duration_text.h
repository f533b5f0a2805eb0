// Durations in flags: "500ms", "30s", "2m", "1h"; a bare number is seconds.
#pragma once

#include <chrono>
#include <string_view>

#include "util/status.h"

namespace tessera {

Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

}  // namespace tessera
