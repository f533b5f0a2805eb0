// What every request meets before its route: the bearer token, the rate limit;
// and what is recorded after it: metrics and one log line.
#include "server/server_state.h"
#include "util/log.h"

namespace tessera::server {
namespace {

// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
bool SameSecret(const std::string& a, const std::string& b) {
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) difference |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
  return difference == 0 && !b.empty();
}

}  // namespace

RequestGuard MakeRequestGuard(JobServer::State& state) {
  return [&state](const HttpRequest& request, const Route* route, HttpResponse& response) {
    const ServerConfig& config = state.config;
    if (!config.token.empty() && !(route != nullptr && route->needs_no_token)) {
      std::string header = request.Header("Authorization");
      const std::string prefix = "Bearer ";
      if (header.rfind(prefix, 0) != 0 || !SameSecret(header.substr(prefix.size()), config.token)) {
        response.SetHeader("WWW-Authenticate", "Bearer realm=\"tessera\"");
        ReplyError(response, 401, "a valid bearer token is required (Authorization: Bearer <token>)");
        return true;
      }
    }
    if (state.limiter && !(route != nullptr && route->not_rate_limited)) {
      auto decision = state.limiter->Take(request.remote_addr, RateLimiter::Clock::now());
      if (!decision.allowed) {
        response.SetHeader("Retry-After", std::to_string(decision.retry_after_seconds));
        ReplyError(response, 429, "too many requests; retry in " + std::to_string(decision.retry_after_seconds) + " s");
        return true;
      }
      response.SetHeader("X-RateLimit-Remaining", std::to_string(decision.remaining));
    }
    return false;
  };
}

RequestObserver MakeRequestObserver(JobServer::State& state) {
  return [&state](const HttpRequest& request, int status) {
    state.metrics.CountRequest(request.method, status);
    if (request.path == "/metrics" || request.path == "/health") return;
    LogInfo("http_request").Field("method", request.method).Field("path", request.path).Field("status", status)
        .Field("client", request.remote_addr);
  };
}

}  // namespace tessera::server
