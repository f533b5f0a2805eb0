// The one mapping from a Status code to an HTTP status, so every route answers
// the same failure the same way.
#pragma once

#include "server/http_message.h"
#include "util/status.h"

namespace tessera::server {

// kInvalid 400, kNotFound 404, kLimit 409 (a name taken, no retry left),
// kBadImage 415 (not an image at all), kUnsupported 501, kDeviceUnavailable and
// kOutOfMemory 503, kTimeout 504, anything else 500.
int HttpStatusFor(StatusCode code);

// {"error": message} with `status`.
void ReplyJson(HttpResponse& response, int status, std::string body);
void ReplyError(HttpResponse& response, int status, const std::string& message);
// ReplyError with HttpStatusFor(status.code()).
void ReplyStatus(HttpResponse& response, const Status& status);

}  // namespace tessera::server
