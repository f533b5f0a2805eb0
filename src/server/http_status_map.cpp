#include "server/http_status_map.h"

#include <nlohmann/json.hpp>

namespace tessera::server {

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalid: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kConflict: return 409;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kLimit: return 409;
    case StatusCode::kBadImage: return 415;
    case StatusCode::kUnsupported: return 501;
    case StatusCode::kDeviceUnavailable:
    case StatusCode::kOutOfMemory: return 503;
    case StatusCode::kTimeout: return 504;
    case StatusCode::kProtocol:
    case StatusCode::kInternal:
    case StatusCode::kIo: return 500;
  }
  return 500;
}

void ReplyJson(HttpResponse& response, int status, std::string body) {
  response.status = status;
  response.content_type = "application/json";
  response.body = std::move(body);
}

void ReplyError(HttpResponse& response, int status, const std::string& message) {
  ReplyJson(response, status, nlohmann::json{{"error", message}}.dump());
}

void ReplyStatus(HttpResponse& response, const Status& status) {
  ReplyError(response, HttpStatusFor(status.code()), status.message());
  // The shared database is away: a client should come back shortly, not give up.
  if (status.code() == StatusCode::kUnavailable) response.SetHeader("Retry-After", "5");
}

}  // namespace tessera::server
