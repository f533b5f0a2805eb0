// The dashboard (issue 17): GET / (the page), GET /ui/{file} (its script,
// styles and icon), all embedded in the binary (dashboard_assets.h); and the
// browser's session: GET /session, POST /session {"token"}, DELETE /session
// (dashboard_session.h, docs/dashboard.md).
#include <nlohmann/json.hpp>

#include "jobs/job_state.h"
#include "server/dashboard_assets.h"
#include "server/server_state.h"
#include "util/log.h"

namespace tessera::server {
namespace {

using nlohmann::json;

constexpr int64_t kSessionLifetimeMs = 7LL * 24 * 3600 * 1000;

// The page loads nothing from elsewhere; the policy says so to the browser too.
constexpr const char* kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
    "connect-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const DashboardAsset* FindAsset(std::string_view name) {
  for (const DashboardAsset& asset : DashboardAssets()) {
    if (asset.name == name) return &asset;
  }
  return nullptr;
}

// Any If-None-Match entry equal to the ETag (or "*"); a weak W/ prefix is ignored.
bool EtagMatches(const std::string& header, std::string_view etag) {
  for (std::string item : SplitCsv(header)) {
    if (item.rfind("W/", 0) == 0) item = item.substr(2);
    if (item == "*" || item == etag) return true;
  }
  return false;
}

// Revalidated on every load (no-cache) so a new binary's page is seen at once;
// an unchanged file costs a 304 and no body.
void ServeAsset(const DashboardAsset& asset, const HttpRequest& request, HttpResponse& response) {
  response.SetHeader("ETag", std::string(asset.etag));
  response.SetHeader("Cache-Control", "no-cache");
  response.SetHeader("X-Content-Type-Options", "nosniff");
  response.SetHeader("Content-Security-Policy", kContentSecurityPolicy);
  response.SetHeader("Referrer-Policy", "no-referrer");
  if (EtagMatches(request.Header("If-None-Match"), asset.etag)) {
    response.status = 304;
    return;
  }
  response.status = 200;
  response.content_type = std::string(asset.content_type);
  response.body = std::string(asset.body);
}

void Page(const HttpRequest& request, HttpResponse& response) {
  const DashboardAsset* page = FindAsset("index.html");
  if (page == nullptr) return ReplyError(response, 500, "the dashboard was not embedded in this build");
  ServeAsset(*page, request, response);
}

void Asset(const HttpRequest& request, HttpResponse& response) {
  const std::string& name = request.captures[0];
  const DashboardAsset* asset = name == "index.html" ? nullptr : FindAsset(name);
  if (asset == nullptr) return ReplyError(response, 404, "no dashboard file " + name);
  ServeAsset(*asset, request, response);
}

std::string SessionCookieHeader(const JobServer::State& state, const std::string& value, int64_t max_age_s) {
  std::string cookie = std::string(kSessionCookie) + "=" + value + "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" +
                       std::to_string(max_age_s);
  // Behind an https proxy the cookie must never travel in clear.
  if (state.config.host_base_url.rfind("https://", 0) == 0) cookie += "; Secure";
  return cookie;
}

// GET /session: whether the server wants a token, and whether this browser has
// a session (then its CSRF token).
void GetSession(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  json answer = {{"auth_required", state.sessions->enabled()}, {"authenticated", !state.sessions->enabled()},
                 {"csrf", nullptr}};
  if (state.sessions->enabled()) {
    auto cookie = RequestCookie(request, kSessionCookie);
    if (cookie && state.sessions->Valid(*cookie, jobs::NowMs())) {
      answer["authenticated"] = true;
      answer["csrf"] = state.sessions->CsrfFor(*cookie);
    }
  }
  response.SetHeader("Cache-Control", "no-store");
  ReplyJson(response, 200, answer.dump());
}

// POST /session {"token": "..."}: the token for a cookie. The token itself is
// never logged (the request log has the path only) and never sent back.
void PostSession(JobServer::State& state, const HttpRequest& request, HttpResponse& response) {
  response.SetHeader("Cache-Control", "no-store");
  if (!state.sessions->enabled()) {
    return ReplyJson(response, 200, json{{"auth_required", false}, {"authenticated", true}, {"csrf", nullptr}}.dump());
  }
  json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("token") || !body["token"].is_string()) {
    return ReplyError(response, 400, "the body must be {\"token\": \"...\"}");
  }
  if (!SameSecret(body["token"].get<std::string>(), state.config.token)) {
    LogWarn("session_refused").Field("client", request.remote_addr);
    return ReplyError(response, 401, "wrong token");
  }
  std::string cookie = state.sessions->Issue(jobs::NowMs(), kSessionLifetimeMs);
  if (cookie.empty()) return ReplyError(response, 500, "could not draw a random session nonce");
  response.SetHeader("Set-Cookie", SessionCookieHeader(state, cookie, kSessionLifetimeMs / 1000));
  LogInfo("session_opened").Field("client", request.remote_addr);
  ReplyJson(response, 200,
            json{{"auth_required", true}, {"authenticated", true}, {"csrf", state.sessions->CsrfFor(cookie)}}.dump());
}

// DELETE /session: the browser forgets its cookie (the page's "sign out").
void DeleteSession(JobServer::State& state, const HttpRequest&, HttpResponse& response) {
  response.SetHeader("Set-Cookie", SessionCookieHeader(state, "", 0));
  response.SetHeader("Cache-Control", "no-store");
  ReplyJson(response, 200, json{{"authenticated", false}}.dump());
}

}  // namespace

void RegisterDashboardRoutes(JobServer::State& state) {
  state.sessions = std::make_unique<DashboardSessions>(state.config.token);
  // The page and its files hold no data: they load without the token, then ask for it.
  for (const char* pattern : {"/", "/ui/{}"}) {
    Route& route = state.router.Add("GET", pattern, std::string(pattern) == "/" ? RouteHandler(Page) : RouteHandler(Asset));
    route.needs_no_token = true;
    route.runs_on_event_loop = true;
    route.not_rate_limited = true;  // a copy from memory; a page load must not spend a client's budget
  }
  Route& get = state.router.Add("GET", "/session", [&state](const HttpRequest& q, HttpResponse& r) { GetSession(state, q, r); });
  get.needs_no_token = true;
  get.runs_on_event_loop = true;
  state.router.Add("POST", "/session", [&state](const HttpRequest& q, HttpResponse& r) { PostSession(state, q, r); })
      .needs_no_token = true;
  state.router.Add("DELETE", "/session", [&state](const HttpRequest& q, HttpResponse& r) { DeleteSession(state, q, r); })
      .needs_no_token = true;
}

}  // namespace tessera::server
