#include "util/duration_text.h"

#include <charconv>
#include <cmath>
#include <string>

namespace tessera {

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  double number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || !std::isfinite(number) || number < 0) {
    return InvalidError("\"" + std::string(text) + "\" is not a duration; use e.g. 500ms, 30s or 2m");
  }
  std::string_view unit(end, static_cast<size_t>(text.data() + text.size() - end));
  double ms_per_unit = 0;
  if (unit.empty() || unit == "s")
    ms_per_unit = 1000;
  else if (unit == "ms")
    ms_per_unit = 1;
  else if (unit == "m")
    ms_per_unit = 60'000;
  else if (unit == "h")
    ms_per_unit = 3'600'000;
  else
    return InvalidError("unknown duration unit \"" + std::string(unit) + "\"; use ms, s, m or h");
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(number * ms_per_unit)));
}

}  // namespace tessera
