#include "util/status.h"

namespace tessera {

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kProtocol: return "protocol";
    case StatusCode::kInvalid: return "invalid";
    case StatusCode::kLimit: return "limit";
    case StatusCode::kBadImage: return "bad_image";
    case StatusCode::kOutOfMemory: return "out_of_memory";
    case StatusCode::kDeviceUnavailable: return "device_unavailable";
    case StatusCode::kTimeout: return "timeout";
    case StatusCode::kInternal: return "internal";
    case StatusCode::kUnsupported: return "unsupported";
    case StatusCode::kIo: return "io";
    case StatusCode::kNotFound: return "not_found";
    case StatusCode::kConflict: return "conflict";
    case StatusCode::kUnavailable: return "unavailable";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(StatusCodeName(code_)) + ": " + message_;
}

}  // namespace tessera
