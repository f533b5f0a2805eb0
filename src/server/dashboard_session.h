// Browser sessions for the dashboard: a browser's EventSource cannot send an
// Authorization header, so a page that knows the token trades it once for an
// HttpOnly, SameSite=Strict cookie (docs/dashboard.md).
//
// A cookie is "v1.<expiry ms>.<nonce>.<mac>", the mac an HMAC-SHA256 (OpenSSL)
// of the rest under a key derived from the server's token: nothing is kept per
// session, sessions survive a restart, and changing the token ends them all.
// Changes made with a cookie must also carry X-Tessera-CSRF: an HMAC of the
// cookie under the same key, which the page reads from POST/GET /session and a
// page of another site can neither read nor guess.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "server/http_message.h"

namespace tessera::server {

inline constexpr const char* kSessionCookie = "tessera_session";
inline constexpr const char* kCsrfHeader = "X-Tessera-CSRF";

class DashboardSessions {
 public:
  // An empty token: no authentication (every method answers "no session needed").
  explicit DashboardSessions(const std::string& token);

  bool enabled() const { return !key_.empty(); }
  // A new cookie value valid until now_ms + lifetime_ms.
  std::string Issue(int64_t now_ms, int64_t lifetime_ms) const;
  // The mac matches and the expiry is in the future.
  bool Valid(const std::string& cookie, int64_t now_ms) const;
  // The CSRF token that goes with a cookie.
  std::string CsrfFor(const std::string& cookie) const;

 private:
  std::string Mac(const std::string& text) const;  // lower-case hex
  std::string key_;
};

// The value of cookie `name` in the request's Cookie headers; nullopt when absent.
std::optional<std::string> RequestCookie(const HttpRequest& request, const std::string& name);
// Equal without a timing side channel (OpenSSL's CRYPTO_memcmp); an empty `b` never matches.
bool SameSecret(const std::string& a, const std::string& b);

}  // namespace tessera::server
