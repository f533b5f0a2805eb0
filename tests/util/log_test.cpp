#include "util/log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace tessera {
namespace {

// Captures what is written to stderr (fd 2) while alive.
class StderrCapture {
 public:
  StderrCapture() {
    saved_ = ::dup(STDERR_FILENO);
    file_ = std::tmpfile();
    ::dup2(::fileno(file_), STDERR_FILENO);
  }
  std::string Take() {
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    std::string text;
    std::rewind(file_);
    char buf[512];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, file_)) > 0) text.append(buf, n);
    std::fclose(file_);
    return text;
  }

 private:
  int saved_;
  std::FILE* file_;
};

TEST(LogTest, WritesOneKeyValueLineQuotingWhereNeeded) {
  SetLogLevel(LogLevel::kInfo);
  StderrCapture capture;
  LogInfo("request").Field("request_id", 7).Field("status", "OK").Field("error", "a \"b\" c");
  std::string text = capture.Take();
  EXPECT_NE(text.find(" level=info event=request request_id=7 status=OK error=\"a \\\"b\\\" c\"\n"), std::string::npos)
      << text;
  EXPECT_EQ(text.find('\n'), text.size() - 1);
}

TEST(LogTest, LinesBelowTheLevelAreDropped) {
  SetLogLevel(LogLevel::kWarn);
  StderrCapture capture;
  LogInfo("hidden").Field("k", 1);
  LogWarn("shown");
  std::string text = capture.Take();
  SetLogLevel(LogLevel::kInfo);
  EXPECT_EQ(text.find("hidden"), std::string::npos);
  EXPECT_NE(text.find("event=shown"), std::string::npos);
}

TEST(LogTest, ParsesLevels) {
  LogLevel l;
  ASSERT_TRUE(ParseLogLevel("debug", &l));
  EXPECT_EQ(l, LogLevel::kDebug);
  EXPECT_FALSE(ParseLogLevel("loud", &l));
}

}  // namespace
}  // namespace tessera
