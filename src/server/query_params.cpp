#include "server/query_params.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "server/http_router.h"

namespace tessera::server {

Result<std::map<std::string, std::string>> ParseQueryString(const std::string& text) {
  std::map<std::string, std::string> query;
  size_t start = 0;
  while (start < text.size()) {
    size_t amp = text.find('&', start);
    if (amp == std::string::npos) amp = text.size();
    std::string pair = text.substr(start, amp - start);
    start = amp + 1;
    if (pair.empty()) continue;
    size_t equals = pair.find('=');
    auto name = PercentDecode(pair.substr(0, equals), true);
    auto value = PercentDecode(equals == std::string::npos ? "" : pair.substr(equals + 1), true);
    if (!name || !value) return InvalidError("the query string has a bad %-escape in \"" + pair + "\"");
    query.emplace(std::move(*name), std::move(*value));
  }
  return query;
}

Result<bool> BoolParam(const HttpRequest& request, const std::string& name, bool absent) {
  if (!request.HasParam(name)) return absent;
  std::string value = request.Param(name);
  if (value == "true") return true;
  if (value == "false") return false;
  return InvalidError("query parameter " + name + " must be true or false, not \"" + value + "\"");
}

Result<double> SecondsParam(const HttpRequest& request, const std::string& name, double absent, double low,
                            double high) {
  if (!request.HasParam(name)) return absent;
  std::string value = request.Param(name);
  char* end = nullptr;
  double seconds = value.empty() ? NAN : std::strtod(value.c_str(), &end);
  if (value.empty() || end != value.c_str() + value.size() || !std::isfinite(seconds) || seconds < low ||
      seconds > high) {
    return InvalidError("query parameter " + name + " must be a number of seconds from " +
                        std::to_string(static_cast<int64_t>(low)) + " to " + std::to_string(static_cast<int64_t>(high)) +
                        ", not \"" + value + "\"");
  }
  return seconds;
}

Result<int64_t> IntegerParam(const HttpRequest& request, const std::string& name, int64_t absent, int64_t low,
                             int64_t high) {
  if (!request.HasParam(name)) return absent;
  std::string value = request.Param(name);
  int64_t number = 0;
  auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), number);
  if (value.empty() || error != std::errc() || end != value.data() + value.size() || number < low || number > high) {
    return InvalidError("query parameter " + name + " must be a whole number from " + std::to_string(low) + " to " +
                        std::to_string(high) + ", not \"" + value + "\"");
  }
  return number;
}

}  // namespace tessera::server
