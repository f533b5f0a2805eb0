#include "jobs/progress_parser.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

namespace tessera::jobs {
namespace {

constexpr std::string_view kStructuredMarker = "TESSERA_PROGRESS";
// More digits than this is not a step count; it also keeps int64 from overflowing.
constexpr size_t kMaxDigits = 15;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsSpace(char c) { return c == ' ' || c == '\t'; }
bool IsAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char ToLowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view Trim(std::string_view s) {
  size_t b = 0;
  while (b < s.size() && (IsSpace(s[b]) || s[b] == '\n' || s[b] == '\r')) ++b;
  size_t e = s.size();
  while (e > b && (IsSpace(s[e - 1]) || s[e - 1] == '\n' || s[e - 1] == '\r')) --e;
  return s.substr(b, e - b);
}

size_t SkipSpaces(std::string_view s, size_t pos) {
  while (pos < s.size() && IsSpace(s[pos])) ++pos;
  return pos;
}

// True when `s` holds `word` at `pos`, ignoring ASCII case (`word` is lower-case).
bool HasWordAt(std::string_view s, size_t pos, std::string_view word) {
  if (pos + word.size() > s.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    if (ToLowerAscii(s[pos + i]) != word[i]) return false;
  }
  return true;
}

// Reads the decimal number that starts at `pos`; on success `*end` is just past it.
bool ReadNumber(std::string_view s, size_t pos, int64_t* value, size_t* end) {
  size_t i = pos;
  int64_t v = 0;
  while (i < s.size() && IsDigit(s[i])) {
    if (i - pos >= kMaxDigits) return false;
    v = v * 10 + (s[i] - '0');
    ++i;
  }
  if (i == pos) return false;
  *value = v;
  *end = i;
  return true;
}

std::optional<ProgressEvent> Checked(int64_t step, int64_t total, ProgressEvent::Source source) {
  if (total <= 0 || step < 0 || step > total) return std::nullopt;
  return ProgressEvent{step, total, source};
}

// A JSON number that is a whole number representable as int64 (Python may write 15.0).
std::optional<int64_t> WholeNumber(const nlohmann::json& v) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (!std::isfinite(d) || std::floor(d) != d || std::fabs(d) > 9.0e15) return std::nullopt;
    return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

std::optional<ProgressEvent> ParseStructured(std::string_view after_marker) {
  std::string_view body = Trim(after_marker);
  if (body.empty() || body.front() != '{') return std::nullopt;
  nlohmann::json doc = nlohmann::json::parse(body, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return std::nullopt;
  auto step_it = doc.find("step");
  auto total_it = doc.find("total");
  if (step_it == doc.end() || total_it == doc.end()) return std::nullopt;
  std::optional<int64_t> step = WholeNumber(*step_it);
  std::optional<int64_t> total = WholeNumber(*total_it);
  if (!step || !total) return std::nullopt;
  return Checked(*step, *total, ProgressEvent::Source::kStructured);
}

// tqdm's counter: "| 15/40 [" — the bar's closing '|', the counts, the timing bracket.
std::optional<ProgressEvent> ParseTqdm(std::string_view s) {
  for (size_t slash = s.find('/'); slash != std::string_view::npos; slash = s.find('/', slash + 1)) {
    size_t first = slash;
    while (first > 0 && IsDigit(s[first - 1])) --first;
    if (first == slash) continue;
    size_t before = first;
    while (before > 0 && IsSpace(s[before - 1])) --before;
    if (before == 0 || s[before - 1] != '|') continue;
    int64_t step = 0, total = 0;
    size_t end = 0;
    if (!ReadNumber(s, first, &step, &end) || end != slash) continue;
    if (!ReadNumber(s, slash + 1, &total, &end)) continue;
    end = SkipSpaces(s, end);
    if (end >= s.size() || s[end] != '[') continue;
    if (auto event = Checked(step, total, ProgressEvent::Source::kHeuristic)) return event;
  }
  return std::nullopt;
}

// "step 15/40", "Step: 15 / 40", "frames 3/81", "sampling step 15 of 40", "iter 2 out of 9".
std::optional<ProgressEvent> ParseCounterText(std::string_view s) {
  static constexpr std::string_view kKeywords[] = {"step", "frame", "iteration", "iter"};
  for (size_t pos = 0; pos < s.size(); ++pos) {
    if (pos > 0 && (IsAsciiLetter(s[pos - 1]) || IsDigit(s[pos - 1]))) continue;
    for (std::string_view keyword : kKeywords) {
      if (!HasWordAt(s, pos, keyword)) continue;
      size_t i = pos + keyword.size();
      if (i < s.size() && ToLowerAscii(s[i]) == 's') ++i;  // plural
      if (i < s.size() && IsAsciiLetter(s[i])) continue;   // "steppe", "framework"
      while (i < s.size() && (IsSpace(s[i]) || s[i] == ':' || s[i] == '#' || s[i] == '=')) ++i;
      int64_t step = 0, total = 0;
      if (!ReadNumber(s, i, &step, &i)) continue;
      i = SkipSpaces(s, i);
      if (i < s.size() && s[i] == '/') {
        ++i;
      } else if (HasWordAt(s, i, "out of ")) {
        i += 7;
      } else if (HasWordAt(s, i, "of ")) {
        i += 3;
      } else {
        continue;
      }
      i = SkipSpaces(s, i);
      if (!ReadNumber(s, i, &total, &i)) continue;
      // "step 15/40.5" or "step 2024/05/03" is not a counter.
      if (i + 1 < s.size() && (s[i] == '.' || s[i] == '/') && IsDigit(s[i + 1])) continue;
      if (auto event = Checked(step, total, ProgressEvent::Source::kHeuristic)) return event;
    }
  }
  return std::nullopt;
}

// One update: no '\r' or '\n' inside.
std::optional<ProgressEvent> ParseUpdate(std::string_view update) {
  size_t marker = update.find(kStructuredMarker);
  if (marker != std::string_view::npos) {
    return ParseStructured(update.substr(marker + kStructuredMarker.size()));
  }
  if (auto event = ParseTqdm(update)) return event;
  return ParseCounterText(update);
}

// A pending, unterminated update that is already a whole tqdm bar.
std::optional<ProgressEvent> ParseCompleteTqdm(std::string_view update) {
  std::string_view trimmed = Trim(update);
  if (trimmed.empty() || trimmed.back() != ']') return std::nullopt;
  if (trimmed.find(kStructuredMarker) != std::string_view::npos) return std::nullopt;
  return ParseTqdm(trimmed);
}

}  // namespace

const char* ProgressSourceName(ProgressEvent::Source source) {
  switch (source) {
    case ProgressEvent::Source::kStructured: return "structured";
    case ProgressEvent::Source::kHeuristic: return "heuristic";
  }
  return "unknown";
}

double ProgressFraction(const ProgressEvent& progress) {
  if (progress.total <= 0 || progress.step < 0 || progress.step > progress.total) return 0;
  return static_cast<double>(progress.step) / static_cast<double>(progress.total);
}

std::optional<ProgressEvent> ParseProgressLine(std::string_view line) {
  try {
    // Updates separated by '\r' (and a trailing '\n'): the latest that parses wins.
    std::string_view rest = line;
    for (;;) {
      size_t cut = rest.find_last_of("\r\n");
      std::string_view update = cut == std::string_view::npos ? rest : rest.substr(cut + 1);
      if (!Trim(update).empty()) {
        if (auto event = ParseUpdate(update)) return event;
      }
      if (cut == std::string_view::npos) break;
      rest = rest.substr(0, cut);
    }
  } catch (...) {
    // Parsing is best-effort: an allocation failure inside the JSON parser is no event.
  }
  return std::nullopt;
}

ProgressTracker::ProgressTracker(size_t max_line_bytes) : max_line_bytes_(max_line_bytes == 0 ? 1 : max_line_bytes) {}

void ProgressTracker::Feed(std::string_view bytes) {
  bool pending_grew = false;
  while (!bytes.empty()) {
    size_t stop = bytes.find_first_of("\r\n");
    std::string_view piece = bytes.substr(0, stop);
    if (!skipping_overlong_) {
      if (pending_.size() + piece.size() > max_line_bytes_) {
        pending_.clear();
        pending_.shrink_to_fit();
        skipping_overlong_ = true;
        ++overlong_lines_;
        pending_grew = false;
      } else {
        pending_.append(piece);
        pending_grew = !piece.empty();
      }
    }
    if (stop == std::string_view::npos) break;
    EndLine();
    pending_grew = false;
    bytes.remove_prefix(stop + 1);
  }
  if (pending_grew) {
    if (auto event = ParseCompleteTqdm(pending_)) latest_ = event;
  }
}

void ProgressTracker::Finish() {
  if (!pending_.empty() || skipping_overlong_) EndLine();
}

void ProgressTracker::EndLine() {
  if (skipping_overlong_) {
    skipping_overlong_ = false;
  } else if (!pending_.empty()) {
    if (auto event = ParseProgressLine(pending_)) latest_ = event;
  }
  pending_.clear();
}

}  // namespace tessera::jobs
