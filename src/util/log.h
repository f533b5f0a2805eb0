// The one logging setup: structured key=value lines, one event per line, on stderr.
//
//   LogInfo("request").Field("request_id", 7).Field("status", "ok");
//
// The line is written when the LogLine goes out of scope, in a single write(2), so
// lines from several threads never interleave. stdout is never touched: in worker
// mode it carries protocol frames only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tessera {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

// key=value (the default) or one JSON object per line (`tessera serve`, for log
// collectors). Process-wide; set once at start.
enum class LogFormat { kKeyValue, kJson };
void SetLogFormat(LogFormat format);

// Process-wide minimum level; lines below it cost one comparison.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Parses "debug", "info", "warn", "error", "off"; false when unknown.
bool ParseLogLevel(std::string_view text, LogLevel* out);

class LogLine {
 public:
  LogLine(LogLevel level, std::string_view event);
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;

  LogLine& Field(std::string_view key, std::string_view value);
  LogLine& Field(std::string_view key, const char* value) { return Field(key, std::string_view(value)); }
  LogLine& Field(std::string_view key, const std::string& value) { return Field(key, std::string_view(value)); }
  LogLine& Field(std::string_view key, int64_t value);
  LogLine& Field(std::string_view key, uint64_t value);
  LogLine& Field(std::string_view key, int value) { return Field(key, static_cast<int64_t>(value)); }
  LogLine& Field(std::string_view key, unsigned value) { return Field(key, static_cast<uint64_t>(value)); }
  LogLine& Field(std::string_view key, long long value) { return Field(key, static_cast<int64_t>(value)); }
  LogLine& Field(std::string_view key, unsigned long long value) { return Field(key, static_cast<uint64_t>(value)); }
  LogLine& Field(std::string_view key, double value);
  LogLine& Field(std::string_view key, bool value) { return Field(key, value ? "true" : "false"); }

 private:
  LogLine& Append(std::string_view key, std::string_view value, bool is_number);

  bool enabled_;
  bool json_ = false;
  std::string text_;
};

inline LogLine LogDebug(std::string_view event) { return LogLine(LogLevel::kDebug, event); }
inline LogLine LogInfo(std::string_view event) { return LogLine(LogLevel::kInfo, event); }
inline LogLine LogWarn(std::string_view event) { return LogLine(LogLevel::kWarn, event); }
inline LogLine LogError(std::string_view event) { return LogLine(LogLevel::kError, event); }

}  // namespace tessera
