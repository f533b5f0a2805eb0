// Progress read from an external generator's output (seed 001, section 8):
//
//   tier A, structured: a line `TESSERA_PROGRESS {"step":15,"total":40}` that a
//           generator can print on purpose (a JSON object; other keys are ignored);
//   tier B, heuristic:  what generators print anyway — tqdm bars
//           (` 37%|███▋      | 15/40 [00:12<00:20,  1.23it/s]`) and text such as
//           "step 15/40", "Step 15 / 40", "frame 3/81", "sampling step 15 of 40".
//
// Nothing here throws, allocates without bound or trusts its input: a line that is
// not understood, or reports nonsense (total 0, step > total, a negative number),
// simply yields no event.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tessera::jobs {

struct ProgressEvent {
  enum class Source { kStructured, kHeuristic };

  int64_t step = 0;   // 0 <= step <= total
  int64_t total = 0;  // > 0
  Source source = Source::kHeuristic;

  bool operator==(const ProgressEvent&) const = default;
};

// "structured" or "heuristic", for logs and the API.
const char* ProgressSourceName(ProgressEvent::Source source);

// step / total, in [0, 1], for the API; 0 for an event that breaks the invariants.
double ProgressFraction(const ProgressEvent& progress);

// Parses one line of output. A line may hold several '\r'-separated updates (tqdm
// redraws its bar in place); the last one that parses wins. A line carrying the
// TESSERA_PROGRESS marker is read as tier A only: if its JSON is malformed the line
// yields nothing, even if it happens to contain "15/40". Among tier B patterns, a
// tqdm bar is preferred over text, and the first text match in an update is taken.
std::optional<ProgressEvent> ParseProgressLine(std::string_view line);

// Follows a command's output as it arrives, in chunks that may split lines (and
// UTF-8 sequences) anywhere, and keeps the latest progress event.
//
// Lines end at '\n' or '\r'. A line is parsed once it is terminated, with one
// exception: tqdm terminates a redraw only when it starts the next one, so a
// pending line that is already a complete tqdm bar (it ends with its closing ']')
// is read at once rather than one update late. A line longer than
// `max_line_bytes` is dropped whole (its pieces are never parsed), so a command
// that never ends a line cannot grow memory. Not thread-safe: one reader per
// command.
class ProgressTracker {
 public:
  static constexpr size_t kDefaultMaxLineBytes = 64 * 1024;

  explicit ProgressTracker(size_t max_line_bytes = kDefaultMaxLineBytes);

  void Feed(std::string_view bytes);
  // End of output: the unterminated rest, if any, is parsed as a last line.
  void Finish();

  const std::optional<ProgressEvent>& latest() const { return latest_; }
  // Lines dropped for exceeding the cap (for a log line when the command ends).
  uint64_t overlong_lines() const { return overlong_lines_; }
  // Bytes of the current unterminated line held; never more than max_line_bytes.
  size_t buffered_bytes() const { return pending_.size(); }

 private:
  void EndLine();

  size_t max_line_bytes_;
  std::string pending_;
  bool skipping_overlong_ = false;
  uint64_t overlong_lines_ = 0;
  std::optional<ProgressEvent> latest_;
};

}  // namespace tessera::jobs
