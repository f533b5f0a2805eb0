#include "server/byte_ranges.h"

#include <charconv>

namespace tessera::server {
namespace {

std::string Trim(const std::string& text) {
  size_t first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  size_t last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

std::optional<uint64_t> Digits(const std::string& text) {
  if (text.empty()) return std::nullopt;
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

RangeRequest ParseRangeHeader(const std::string& header, uint64_t size) {
  RangeRequest request;
  std::string text = Trim(header);
  if (text.rfind("bytes=", 0) != 0) return request;
  text = text.substr(6);
  std::vector<ByteRange> ranges;
  size_t specs = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string spec = Trim(text.substr(start, comma - start));
    start = comma + 1;
    if (spec.empty()) continue;  // "a, ,b": empty elements are allowed
    if (++specs > kMaxRanges) {
      request.outcome = RangeOutcome::kTooManyRanges;
      return request;
    }
    size_t dash = spec.find('-');
    if (dash == std::string::npos) return RangeRequest{};
    std::string left = spec.substr(0, dash), right = spec.substr(dash + 1);
    if (left.empty()) {
      auto suffix = Digits(right);
      if (!suffix) return RangeRequest{};
      if (*suffix == 0 || size == 0) continue;  // "-0" selects nothing
      uint64_t length = std::min(*suffix, size);
      ranges.push_back({size - length, length});
      continue;
    }
    auto first = Digits(left);
    if (!first) return RangeRequest{};
    std::optional<uint64_t> last;
    if (!right.empty()) {
      last = Digits(right);
      if (!last || *last < *first) return RangeRequest{};  // invalid: the whole header is ignored
    }
    if (*first >= size) continue;
    uint64_t end = last ? std::min(*last, size - 1) : size - 1;
    ranges.push_back({*first, end - *first + 1});
  }
  if (specs == 0) return RangeRequest{};
  request.outcome = ranges.empty() ? RangeOutcome::kUnsatisfiable : RangeOutcome::kSatisfiable;
  request.ranges = std::move(ranges);
  return request;
}

}  // namespace tessera::server
