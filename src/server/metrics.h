// Prometheus metrics the server keeps itself (GET /metrics renders them together
// with gauges read at scrape time: jobs by status, queue depth, lane state).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace tessera::server {

// A cumulative histogram with fixed upper bounds (seconds).
class DurationHistogram {
 public:
  explicit DurationHistogram(std::vector<double> bounds);
  void Observe(double seconds);
  // Appends the _bucket/_sum/_count lines for `name` with the given label text
  // (e.g. `kind="generate"`, may be empty).
  void Render(const std::string& name, const std::string& labels, std::string& out) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bound, not cumulative; last = +Inf
  double sum_ = 0.0;
  uint64_t count_ = 0;
};

class ServerMetrics {
 public:
  ServerMetrics();
  void ObserveJobDuration(const std::string& kind, const std::string& status, double seconds);
  void CountRequest(const std::string& method, int status);
  // The server's own series, in the text exposition format.
  std::string Render() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, DurationHistogram> job_durations_;  // (kind, status)
  std::map<std::pair<std::string, int>, uint64_t> requests_;                        // (method, status)
};

// Escapes a label value for the exposition format.
std::string PrometheusLabel(const std::string& value);

}  // namespace tessera::server
