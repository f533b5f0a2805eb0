// The Range header of a GET (RFC 9110 section 14): "bytes=0-99", "bytes=500-",
// "bytes=-10" (the last 10), several separated by commas.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace tessera::server {

struct ByteRange {
  uint64_t first = 0;
  uint64_t length = 0;
};

// Most ranges in one request: more is refused (a many-range request costs a
// part header each and can ask for the same bytes many times).
constexpr size_t kMaxRanges = 16;

enum class RangeOutcome {
  kWholeFile,       // no Range header, another unit, or a syntax error: ignore it (RFC 9110 14.2)
  kSatisfiable,     // `ranges` hold what to send (206)
  kUnsatisfiable,   // no range overlaps the file (416)
  kTooManyRanges,   // more than kMaxRanges (416)
};

struct RangeRequest {
  RangeOutcome outcome = RangeOutcome::kWholeFile;
  std::vector<ByteRange> ranges;
};

// Resolves `header` against a file of `size` bytes: suffix ranges count from the
// end, last positions past the end are clipped, ranges starting at or past the
// end are dropped (all dropped: unsatisfiable).
RangeRequest ParseRangeHeader(const std::string& header, uint64_t size);

}  // namespace tessera::server
