#include "util/failpoint.h"

#include <atomic>
#include <charconv>
#include <map>
#include <mutex>

namespace tessera {
namespace {

struct Point {
  int64_t fail_on = 0;     // 0: every hit (unless fail_first); n: only the n-th
  int64_t fail_first = 0;  // n: the first n hits
  int64_t hits = 0;
};

std::atomic<bool> g_armed{false};
std::mutex g_mutex;
std::map<std::string, Point, std::less<>> g_points;

}  // namespace

Status ArmFailpoints(std::string_view spec) {
  std::map<std::string, Point, std::less<>> points;
  size_t start = 0;
  while (start < spec.size()) {
    size_t comma = spec.find(',', start);
    if (comma == std::string_view::npos) comma = spec.size();
    std::string_view item = spec.substr(start, comma - start);
    start = comma + 1;
    if (item.empty()) continue;
    Point point;
    size_t at = item.find_first_of("@*");
    std::string_view name = item.substr(0, at);
    if (at != std::string_view::npos) {
      std::string_view count = item.substr(at + 1);
      int64_t n = 0;
      auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), n);
      if (ec != std::errc() || end != count.data() + count.size() || n < 1) {
        return InvalidError("failpoint \"" + std::string(item) + "\": expected name, name@N or name*N with N >= 1");
      }
      (item[at] == '@' ? point.fail_on : point.fail_first) = n;
    }
    if (name.empty()) return InvalidError("failpoint with an empty name in \"" + std::string(spec) + "\"");
    points[std::string(name)] = point;
  }
  std::lock_guard lock(g_mutex);
  g_points = std::move(points);
  g_armed.store(!g_points.empty());
  return Status::Ok();
}

void DisarmFailpoints() {
  std::lock_guard lock(g_mutex);
  g_points.clear();
  g_armed.store(false);
}

bool FailpointHit(std::string_view name) {
  if (!g_armed.load(std::memory_order_relaxed)) return false;
  std::lock_guard lock(g_mutex);
  auto it = g_points.find(name);
  if (it == g_points.end()) return false;
  Point& point = it->second;
  point.hits += 1;
  if (point.fail_first > 0) return point.hits <= point.fail_first;
  return point.fail_on == 0 || point.hits == point.fail_on;
}

}  // namespace tessera
