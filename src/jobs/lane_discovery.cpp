#include "jobs/lane_discovery.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <set>
#include <sstream>

#include "util/fd_io.h"
#include "util/subprocess.h"

namespace tessera::jobs {
namespace {

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

std::vector<std::string> SplitComma(std::string_view text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    parts.push_back(Trim(text.substr(start, comma - start)));
    start = comma + 1;
  }
  return parts;
}

Result<std::vector<int>> ParseGpuIds(std::string_view text, std::string_view what) {
  std::vector<int> ids;
  std::set<int> seen;
  for (const std::string& part : SplitComma(text)) {
    int id = -1;
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), id);
    if (part.empty() || ec != std::errc() || end != part.data() + part.size() || id < 0) {
      return InvalidError(std::string(what) + "=\"" + std::string(text) +
                          "\": expected comma-separated GPU numbers such as 0,1");
    }
    if (!seen.insert(id).second) {
      return InvalidError(std::string(what) + "=\"" + std::string(text) + "\": GPU " + part + " is listed twice");
    }
    ids.push_back(id);
  }
  return ids;
}

// "GPU 0: NVIDIA H100 (UUID: ...)" lines.
std::vector<int> ParseNvidiaSmi(std::string_view listing) {
  std::vector<int> ids;
  std::istringstream lines{std::string(listing)};
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("GPU ", 0) != 0) continue;
    int id = -1;
    auto [end, ec] = std::from_chars(line.data() + 4, line.data() + line.size(), id);
    if (ec == std::errc() && end < line.data() + line.size() && *end == ':' && id >= 0) ids.push_back(id);
  }
  return ids;
}

// The NVIDIA sources number CUDA devices; the machine's numbering names them
// (the same on an NVIDIA machine, and right where CUDA is absent).
std::vector<LaneSpec> GpuLanes(const std::vector<int>& ids, const std::vector<std::string>& numbered) {
  std::vector<LaneSpec> lanes;
  for (int id : ids) {
    lanes.push_back({static_cast<size_t>(id) < numbered.size() ? numbered[id] : "cuda:" + std::to_string(id), id});
  }
  return lanes;
}

}  // namespace

Result<std::vector<LaneSpec>> DiscoverLanes(const LaneSources& sources) {
  if (sources.cpu_lanes < 1) return InvalidError("cpu lanes must be at least 1");
  std::vector<int> gpus;
  if (sources.gpu_ids && !Trim(*sources.gpu_ids).empty()) {
    auto ids = ParseGpuIds(*sources.gpu_ids, "GPU_IDS");
    if (!ids.ok()) return ids.status();
    gpus = *ids;
  } else if (sources.nvidia_visible_devices && Trim(*sources.nvidia_visible_devices) != "all") {
    std::string value = Trim(*sources.nvidia_visible_devices);
    if (value != "none" && value != "void" && !value.empty()) {
      std::vector<std::string> parts = SplitComma(value);
      bool numeric = std::all_of(parts.begin(), parts.end(), [](const std::string& p) {
        return !p.empty() && std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; });
      });
      if (numeric) {
        auto ids = ParseGpuIds(value, "NVIDIA_VISIBLE_DEVICES");
        if (!ids.ok()) return ids.status();
        gpus = *ids;
      } else {
        // UUIDs (GPU-...): inside the container they are numbered from 0 in order.
        for (size_t i = 0; i < parts.size(); ++i) gpus.push_back(static_cast<int>(i));
      }
    }
  } else if (sources.nvidia_smi_list) {
    gpus = ParseNvidiaSmi(*sources.nvidia_smi_list);
  }
  if (gpus.empty()) {
    for (size_t i = 0; i < sources.numbered_gpus.size(); ++i) gpus.push_back(static_cast<int>(i));
  }
  if (!gpus.empty()) return GpuLanes(gpus, sources.numbered_gpus);
  std::vector<LaneSpec> lanes;
  for (int i = 0; i < sources.cpu_lanes; ++i) lanes.push_back({"cpu:" + std::to_string(i), -1});
  return lanes;
}

std::optional<std::string> RunNvidiaSmiList() {
  SubprocessOptions options;
  options.argv = {"nvidia-smi", "-L"};
  options.pipe_stdin = false;
  options.stderr_path = "/dev/null";
  auto child = Subprocess::Start(options);
  if (!child.ok()) return std::nullopt;
  std::string output;
  uint8_t buffer[4096];
  while (true) {
    Result<size_t> got = ReadSome(child->stdout_fd(), buffer, sizeof buffer);  // retries EINTR
    if (!got.ok() || *got == 0) break;
    output.append(reinterpret_cast<const char*>(buffer), *got);
  }
  auto status = child->Wait();
  if (!status.ok() || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) return std::nullopt;
  return output;
}

}  // namespace tessera::jobs
