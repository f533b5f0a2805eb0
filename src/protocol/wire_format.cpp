#include "protocol/wire_format.h"

namespace tessera::protocol {

std::string_view EngineName(Engine engine) {
  switch (engine) {
    case Engine::kRealEsrgan: return "realesrgan";
    case Engine::kRealCugan: return "realcugan";
    case Engine::kWaifu2x: return "waifu2x";
    case Engine::kLanczos: return "lanczos";
  }
  return "unknown";
}

std::optional<Engine> EngineFromWire(uint32_t value) {
  if (value >= 1 && value <= 4) return static_cast<Engine>(value);
  return std::nullopt;
}

std::optional<Engine> EngineFromName(std::string_view name) {
  for (uint32_t v = 1; v <= 4; ++v) {
    Engine e = static_cast<Engine>(v);
    if (EngineName(e) == name) return e;
  }
  return std::nullopt;
}

std::string_view WireStatusName(WireStatus status) {
  switch (status) {
    case WireStatus::kOk: return "OK";
    case WireStatus::kProtocol: return "PROTOCOL";
    case WireStatus::kInvalid: return "INVALID";
    case WireStatus::kLimit: return "LIMIT";
    case WireStatus::kBadImage: return "BAD_IMAGE";
    case WireStatus::kOutOfMemory: return "OUT_OF_MEMORY";
    case WireStatus::kDeviceUnavailable: return "DEVICE_UNAVAILABLE";
    case WireStatus::kTimeout: return "TIMEOUT";
    case WireStatus::kInternal: return "INTERNAL";
    case WireStatus::kUnsupported: return "UNSUPPORTED";
  }
  return "UNKNOWN";
}

WireStatus ToWireStatus(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return WireStatus::kOk;
    case StatusCode::kProtocol: return WireStatus::kProtocol;
    case StatusCode::kInvalid: return WireStatus::kInvalid;
    case StatusCode::kNotFound: return WireStatus::kInvalid;
    case StatusCode::kConflict: return WireStatus::kInvalid;
    case StatusCode::kUnavailable: return WireStatus::kInternal;
    case StatusCode::kLimit: return WireStatus::kLimit;
    case StatusCode::kBadImage: return WireStatus::kBadImage;
    case StatusCode::kOutOfMemory: return WireStatus::kOutOfMemory;
    case StatusCode::kDeviceUnavailable: return WireStatus::kDeviceUnavailable;
    case StatusCode::kTimeout: return WireStatus::kTimeout;
    case StatusCode::kUnsupported: return WireStatus::kUnsupported;
    case StatusCode::kInternal: return WireStatus::kInternal;
    case StatusCode::kIo: return WireStatus::kInternal;
  }
  return WireStatus::kInternal;
}

}  // namespace tessera::protocol
