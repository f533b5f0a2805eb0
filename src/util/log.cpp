#include "util/log.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace tessera {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<bool> g_json{false};

void AppendJsonString(std::string* out, std::string_view v) {
  out->push_back('"');
  for (char c : v) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (c == '\n') {
      out->append("\\n");
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\u%04x", static_cast<unsigned char>(c));
      out->append(hex);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
    case LogLevel::kOff: return "off";
  }
  return "info";
}

bool NeedsQuotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20) return true;
  }
  return false;
}

void AppendValue(std::string* out, std::string_view v) {
  if (!NeedsQuotes(v)) {
    out->append(v);
    return;
  }
  out->push_back('"');
  for (char c : v) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (c == '\n') {
      out->append("\\n");
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned char>(c));
      out->append(hex);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

std::string Timestamp() {
  using namespace std::chrono;
  auto now = system_clock::now();
  std::time_t t = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

void SetLogFormat(LogFormat format) { g_json.store(format == LogFormat::kJson); }

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }

bool ParseLogLevel(std::string_view text, LogLevel* out) {
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError, LogLevel::kOff}) {
    if (text == LevelName(l)) {
      *out = l;
      return true;
    }
  }
  return false;
}

LogLine::LogLine(LogLevel level, std::string_view event)
    : enabled_(static_cast<int>(level) >= g_level.load() && level != LogLevel::kOff) {
  if (!enabled_) return;
  text_.reserve(160);
  json_ = g_json.load();
  if (json_) {
    text_ += "{\"ts\":\"";
    text_ += Timestamp();
    text_ += "\",\"level\":\"";
    text_ += LevelName(level);
    text_ += "\",\"event\":";
    AppendJsonString(&text_, event);
    return;
  }
  text_ += "ts=";
  text_ += Timestamp();
  text_ += " level=";
  text_ += LevelName(level);
  text_ += " event=";
  AppendValue(&text_, event);
}

LogLine::~LogLine() {
  if (!enabled_) return;
  if (json_) text_.push_back('}');
  text_.push_back('\n');
  const char* p = text_.data();
  size_t left = text_.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // stderr is gone; nothing sensible left to do
    p += n;
    left -= static_cast<size_t>(n);
  }
}

LogLine& LogLine::Field(std::string_view key, std::string_view value) { return Append(key, value, false); }

LogLine& LogLine::Append(std::string_view key, std::string_view value, bool is_number) {
  if (!enabled_) return *this;
  if (json_) {
    text_.push_back(',');
    AppendJsonString(&text_, key);
    text_.push_back(':');
    if (is_number) {
      text_.append(value);
    } else {
      AppendJsonString(&text_, value);
    }
    return *this;
  }
  text_.push_back(' ');
  text_.append(key);
  text_.push_back('=');
  AppendValue(&text_, value);
  return *this;
}

LogLine& LogLine::Field(std::string_view key, int64_t value) {
  return enabled_ ? Append(key, std::to_string(value), true) : *this;
}

LogLine& LogLine::Field(std::string_view key, uint64_t value) {
  return enabled_ ? Append(key, std::to_string(value), true) : *this;
}

LogLine& LogLine::Field(std::string_view key, double value) {
  if (!enabled_) return *this;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", value);
  return Append(key, buf, std::isfinite(value));
}

}  // namespace tessera
