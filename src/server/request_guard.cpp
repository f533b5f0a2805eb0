// What every request meets before its route: the bearer token, the rate limit;
// and what is recorded after it: metrics and one log line.
#include "jobs/job_state.h"
#include "server/dashboard_session.h"
#include "server/server_state.h"
#include "util/log.h"

namespace tessera::server {
namespace {

// What a client refused during a drain is told to wait: a restart under a
// supervisor takes a few seconds.
constexpr int kDrainingRetryAfterSeconds = 5;

bool ChangesSomething(const std::string& method) { return method != "GET" && method != "HEAD" && method != "OPTIONS"; }

}  // namespace

RequestGuard MakeRequestGuard(JobServer::State& state) {
  return [&state](const HttpRequest& request, const Route* route, HttpResponse& response) {
    const ServerConfig& config = state.config;
    if (!config.token.empty() && !(route != nullptr && route->needs_no_token)) {
      // API clients send the bearer token; the dashboard's browser a session
      // cookie (dashboard_session.h), and with it a CSRF header on changes.
      std::string header = request.Header("Authorization");
      const std::string prefix = "Bearer ";
      std::optional<std::string> cookie;
      if (header.empty() && state.sessions) cookie = RequestCookie(request, kSessionCookie);
      if (cookie && state.sessions->Valid(*cookie, jobs::NowMs())) {
        if (ChangesSomething(request.method) &&
            !SameSecret(request.Header(kCsrfHeader), state.sessions->CsrfFor(*cookie))) {
          ReplyError(response, 403, std::string("a change made with a session cookie needs the ") + kCsrfHeader +
                                        " header (from GET /session)");
          return true;
        }
      } else if (header.rfind(prefix, 0) != 0 || !SameSecret(header.substr(prefix.size()), config.token)) {
        response.SetHeader("WWW-Authenticate", "Bearer realm=\"tessera\"");
        ReplyError(response, 401, "a valid bearer token is required (Authorization: Bearer <token>)");
        return true;
      }
    }
    if (route != nullptr && route->submits_work && state.draining) {
      // Before the body is read: a large upload is refused at its head.
      response.SetHeader("Retry-After", std::to_string(kDrainingRetryAfterSeconds));
      ReplyError(response, 503,
                 "this server is draining (shutting down) and takes no new jobs; retry in a few seconds, "
                 "on another server or once it has restarted");
      return true;
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
    // Reads that succeed are the bulk — status polling, the dashboard, files —
    // and would be tens of thousands of lines a second: logged at debug level
    // (`tessera --log-level debug serve`). Submissions, deletions and every
    // error stay at info.
    const bool routine_read = (request.method == "GET" || request.method == "HEAD") && status < 400;
    LogLine(routine_read ? LogLevel::kDebug : LogLevel::kInfo, "http_request")
        .Field("method", request.method)
        .Field("path", request.path)
        .Field("status", status)
        .Field("client", request.remote_addr);
  };
}

}  // namespace tessera::server
