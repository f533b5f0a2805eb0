#include "util/process_memory.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

namespace tessera {
namespace {

// Reads "Key:   1234 kB" from a /proc status-style file; returns bytes.
std::optional<uint64_t> ReadKbField(const char* path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size(), key) == 0 && line.size() > key.size() && line[key.size()] == ':') {
      std::istringstream fields(line.substr(key.size() + 1));
      uint64_t kb = 0;
      if (fields >> kb) return kb * 1024;
    }
  }
  return std::nullopt;
}

std::optional<uint64_t> ReadNumberFile(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text) || text == "max") return std::nullopt;
  try {
    return std::stoull(text);
  } catch (...) {
    return std::nullopt;
  }
}

// The cgroup v2 directory of this process ("0::/path" in /proc/self/cgroup).
std::optional<std::string> OwnCgroupDir() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("0::", 0) == 0) return "/sys/fs/cgroup" + line.substr(3);
  }
  return std::nullopt;
}

}  // namespace

uint64_t CurrentRssBytes() { return ReadKbField("/proc/self/status", "VmRSS").value_or(0); }

uint64_t PeakRssBytes() { return ReadKbField("/proc/self/status", "VmHWM").value_or(0); }

bool ResetPeakRss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

std::optional<uint64_t> AvailableMemoryBytes() {
  std::optional<uint64_t> available = ReadKbField("/proc/meminfo", "MemAvailable");
  if (auto dir = OwnCgroupDir()) {
    auto max = ReadNumberFile(*dir + "/memory.max");
    auto current = ReadNumberFile(*dir + "/memory.current");
    if (max && current) {
      uint64_t room = *max > *current ? *max - *current : 0;
      available = available ? std::min(*available, room) : room;
    }
  }
  return available;
}

}  // namespace tessera
