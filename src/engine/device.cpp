#include "engine/device.h"

#include <charconv>

namespace tessera::engine {

std::string Device::Name() const {
  switch (kind) {
    case Kind::kCpu: return "cpu";
    case Kind::kCuda: return "cuda:" + std::to_string(index);
    case Kind::kVulkan: return "vulkan:" + std::to_string(index);
  }
  return "unknown";
}

Result<Device> ParseDevice(std::string_view name) {
  auto invalid = [&]() {
    return InvalidError("device '" + std::string(name) + "' is not one of cpu, cuda:N, vulkan:N (N = 0, 1, ...)");
  };
  if (name == "cpu") return Device::Cpu();
  Device device;
  std::string_view rest;
  if (name.starts_with("cuda")) {
    device.kind = Device::Kind::kCuda;
    rest = name.substr(4);
  } else if (name.starts_with("vulkan")) {
    device.kind = Device::Kind::kVulkan;
    rest = name.substr(6);
  } else {
    return invalid();
  }
  if (rest.empty()) return device;
  if (rest.front() != ':' || rest.size() < 2 || rest.size() > 4) return invalid();
  rest.remove_prefix(1);
  const auto [end, error] = std::from_chars(rest.data(), rest.data() + rest.size(), device.index);
  if (error != std::errc() || end != rest.data() + rest.size() || device.index < 0) return invalid();
  return device;
}

}  // namespace tessera::engine
