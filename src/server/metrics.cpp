#include "server/metrics.h"

#include <cstdio>

namespace tessera::server {
namespace {

std::string FormatNumber(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.6g", value);
  return buffer;
}

const std::vector<double>& JobDurationBounds() {
  static const std::vector<double> bounds = {0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600};
  return bounds;
}

}  // namespace

std::string PrometheusLabel(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

DurationHistogram::DurationHistogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void DurationHistogram::Observe(double seconds) {
  size_t i = 0;
  while (i < bounds_.size() && seconds > bounds_[i]) ++i;
  counts_[i] += 1;
  sum_ += seconds;
  count_ += 1;
}

void DurationHistogram::Render(const std::string& name, const std::string& labels, std::string& out) const {
  std::string prefix = labels.empty() ? "" : labels + ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += name + "_bucket{" + prefix + "le=\"" + FormatNumber(bounds_[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  cumulative += counts_.back();
  out += name + "_bucket{" + prefix + "le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
  std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + braces + " " + FormatNumber(sum_) + "\n";
  out += name + "_count" + braces + " " + std::to_string(count_) + "\n";
}

ServerMetrics::ServerMetrics() = default;

void ServerMetrics::ObserveJobDuration(const std::string& kind, const std::string& status, double seconds) {
  std::lock_guard lock(mutex_);
  auto key = std::make_pair(kind, status);
  auto it = job_durations_.find(key);
  if (it == job_durations_.end()) it = job_durations_.emplace(key, DurationHistogram(JobDurationBounds())).first;
  it->second.Observe(seconds);
}

void ServerMetrics::CountRequest(const std::string& method, int status) {
  std::lock_guard lock(mutex_);
  requests_[{method, status}] += 1;
}

std::string ServerMetrics::Render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  out += "# HELP tessera_job_duration_seconds Time jobs ran, from start to finish.\n";
  out += "# TYPE tessera_job_duration_seconds histogram\n";
  for (const auto& [key, histogram] : job_durations_) {
    histogram.Render("tessera_job_duration_seconds",
                     "kind=\"" + PrometheusLabel(key.first) + "\",status=\"" + PrometheusLabel(key.second) + "\"", out);
  }
  out += "# HELP tessera_http_requests_total HTTP requests answered, by method and status code.\n";
  out += "# TYPE tessera_http_requests_total counter\n";
  for (const auto& [key, count] : requests_) {
    out += "tessera_http_requests_total{method=\"" + PrometheusLabel(key.first) + "\",code=\"" +
           std::to_string(key.second) + "\"} " + std::to_string(count) + "\n";
  }
  return out;
}

}  // namespace tessera::server
