#include "server/metrics.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace tessera::server {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool HasLine(const std::string& text, const std::string& line) {
  for (const auto& l : Lines(text)) {
    if (l == line) return true;
  }
  return false;
}

TEST(MetricsTest, HistogramBucketsAreCumulativeAndEndWithInfEqualToTheCount) {
  DurationHistogram histogram({1, 5, 10});
  for (double seconds : {0.5, 1.0, 3.0, 7.0, 7.5, 60.0}) histogram.Observe(seconds);
  std::string out;
  histogram.Render("job_seconds", "", out);
  EXPECT_EQ(out,
            "job_seconds_bucket{le=\"1\"} 2\n"  // 0.5 and exactly 1: le is inclusive
            "job_seconds_bucket{le=\"5\"} 3\n"
            "job_seconds_bucket{le=\"10\"} 5\n"
            "job_seconds_bucket{le=\"+Inf\"} 6\n"
            "job_seconds_sum 79\n"
            "job_seconds_count 6\n");
}

TEST(MetricsTest, AnEmptyHistogramRendersZeros) {
  DurationHistogram histogram({0.5});
  std::string out;
  histogram.Render("h", "", out);
  EXPECT_EQ(out, "h_bucket{le=\"0.5\"} 0\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n");
}

TEST(MetricsTest, HistogramLabelsPrecedeLeAndWrapSumAndCount) {
  DurationHistogram histogram({2});
  histogram.Observe(1.25);
  std::string out = "# existing\n";
  histogram.Render("d", "kind=\"upscale\"", out);
  EXPECT_EQ(out,
            "# existing\n"  // appended, not replaced
            "d_bucket{kind=\"upscale\",le=\"2\"} 1\n"
            "d_bucket{kind=\"upscale\",le=\"+Inf\"} 1\n"
            "d_sum{kind=\"upscale\"} 1.25\n"
            "d_count{kind=\"upscale\"} 1\n");
}

TEST(MetricsTest, LabelValuesEscapeBackslashQuoteAndNewline) {
  EXPECT_EQ(PrometheusLabel("plain"), "plain");
  EXPECT_EQ(PrometheusLabel("a\"b"), "a\\\"b");
  EXPECT_EQ(PrometheusLabel("a\\b"), "a\\\\b");
  EXPECT_EQ(PrometheusLabel("a\nb"), "a\\nb");
  EXPECT_EQ(PrometheusLabel("\\\"\n"), "\\\\\\\"\\n");
}

TEST(MetricsTest, RequestCountersAreRenderedPerMethodAndCode) {
  ServerMetrics metrics;
  metrics.CountRequest("GET", 200);
  metrics.CountRequest("GET", 200);
  metrics.CountRequest("GET", 404);
  metrics.CountRequest("POST", 429);
  std::string text = metrics.Render();
  EXPECT_TRUE(HasLine(text, "# TYPE tessera_http_requests_total counter")) << text;
  EXPECT_TRUE(HasLine(text, "tessera_http_requests_total{method=\"GET\",code=\"200\"} 2")) << text;
  EXPECT_TRUE(HasLine(text, "tessera_http_requests_total{method=\"GET\",code=\"404\"} 1")) << text;
  EXPECT_TRUE(HasLine(text, "tessera_http_requests_total{method=\"POST\",code=\"429\"} 1")) << text;
}

TEST(MetricsTest, JobDurationsAreAHistogramPerKindAndStatus) {
  ServerMetrics metrics;
  metrics.ObserveJobDuration("generate", "success", 42);
  metrics.ObserveJobDuration("generate", "success", 400);
  metrics.ObserveJobDuration("upscale", "error", 0.05);
  std::string text = metrics.Render();
  EXPECT_TRUE(HasLine(text, "# TYPE tessera_job_duration_seconds histogram")) << text;
  const std::string gen = "kind=\"generate\",status=\"success\"";
  EXPECT_TRUE(HasLine(text, "tessera_job_duration_seconds_bucket{" + gen + ",le=\"30\"} 0")) << text;
  EXPECT_TRUE(HasLine(text, "tessera_job_duration_seconds_bucket{" + gen + ",le=\"60\"} 1")) << text;
  EXPECT_TRUE(HasLine(text, "tessera_job_duration_seconds_bucket{" + gen + ",le=\"600\"} 2")) << text;
  EXPECT_TRUE(HasLine(text, "tessera_job_duration_seconds_bucket{" + gen + ",le=\"+Inf\"} 2")) << text;
  EXPECT_TRUE(HasLine(text, "tessera_job_duration_seconds_sum{" + gen + "} 442")) << text;
  EXPECT_TRUE(HasLine(text, "tessera_job_duration_seconds_count{" + gen + "} 2")) << text;
  const std::string up = "kind=\"upscale\",status=\"error\"";
  EXPECT_TRUE(HasLine(text, "tessera_job_duration_seconds_bucket{" + up + ",le=\"0.1\"} 1")) << text;
  EXPECT_TRUE(HasLine(text, "tessera_job_duration_seconds_count{" + up + "} 1")) << text;
}

TEST(MetricsTest, EveryRenderedBucketSeriesIsNonDecreasing) {
  ServerMetrics metrics;
  for (double s : {0.01, 0.3, 3.0, 3.0, 45.0, 700.0, 5000.0}) metrics.ObserveJobDuration("generate", "success", s);
  long previous = -1;
  int buckets = 0;
  for (const std::string& line : Lines(metrics.Render())) {
    if (line.rfind("tessera_job_duration_seconds_bucket{", 0) != 0) continue;
    long value = std::stol(line.substr(line.rfind(' ') + 1));
    EXPECT_GE(value, previous) << line;
    previous = value;
    ++buckets;
  }
  EXPECT_GT(buckets, 2);
  EXPECT_EQ(previous, 7);  // +Inf, last, counts everything
}

TEST(MetricsTest, RenderedLabelsAreEscaped) {
  ServerMetrics metrics;
  metrics.CountRequest("GE\"T", 200);
  metrics.ObserveJobDuration("gen\\erate", "a\nb", 1);
  std::string text = metrics.Render();
  EXPECT_TRUE(HasLine(text, "tessera_http_requests_total{method=\"GE\\\"T\",code=\"200\"} 1")) << text;
  EXPECT_TRUE(HasLine(text, "tessera_job_duration_seconds_count{kind=\"gen\\\\erate\",status=\"a\\nb\"} 1")) << text;
}

}  // namespace
}  // namespace tessera::server
