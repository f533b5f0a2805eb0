#include "util/byte_size.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace tessera {

Result<uint64_t> ParseByteSize(std::string_view text) {
  double number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || !std::isfinite(number) || number < 0) {
    return InvalidError("\"" + std::string(text) + "\" is not a size; use e.g. 512MiB, 2GiB or a byte count");
  }
  std::string_view suffix(end, static_cast<size_t>(text.data() + text.size() - end));
  double multiplier = 0;
  struct Unit {
    std::string_view name;
    double factor;
  };
  static constexpr Unit kUnits[] = {
      {"", 1},
      {"B", 1},
      {"k", 1024.0},
      {"K", 1024.0},
      {"KiB", 1024.0},
      {"M", 1048576.0},
      {"MiB", 1048576.0},
      {"G", 1073741824.0},
      {"GiB", 1073741824.0},
      {"T", 1099511627776.0},
      {"TiB", 1099511627776.0},
      {"KB", 1e3},
      {"MB", 1e6},
      {"GB", 1e9},
      {"TB", 1e12},
  };
  for (const Unit& u : kUnits) {
    if (suffix == u.name) multiplier = u.factor;
  }
  if (multiplier == 0) {
    return InvalidError("unknown size unit \"" + std::string(suffix) + "\" in \"" + std::string(text) +
                        "\"; use KiB, MiB, GiB or TiB");
  }
  double bytes = number * multiplier;
  if (bytes > 1.8e19) return InvalidError("size \"" + std::string(text) + "\" is too large");
  return static_cast<uint64_t>(bytes);
}

std::string FormatBytes(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1ull << 30)) {
    std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1ull << 30));
  } else if (bytes >= (1ull << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1ull << 20));
  } else if (bytes >= 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024);
  } else {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  }
  return buf;
}

}  // namespace tessera
