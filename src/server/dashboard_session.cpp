#include "server/dashboard_session.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <vector>

namespace tessera::server {
namespace {

std::string Hex(const unsigned char* data, size_t size) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 15];
  }
  return out;
}

std::string HmacSha256(const std::string& key, const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(text.data()),
           text.size(), digest, &length) == nullptr) {
    return "";
  }
  return std::string(reinterpret_cast<const char*>(digest), length);
}

std::vector<std::string> SplitDots(const std::string& text) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t dot; (dot = text.find('.', start)) != std::string::npos; start = dot + 1) {
    parts.push_back(text.substr(start, dot - start));
  }
  parts.push_back(text.substr(start));
  return parts;
}

}  // namespace

bool SameSecret(const std::string& a, const std::string& b) {
  if (b.empty() || a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

DashboardSessions::DashboardSessions(const std::string& token) {
  // A key of its own, so a cookie's mac never reveals anything usable as the token.
  if (!token.empty()) key_ = HmacSha256(token, "tessera dashboard session key v1");
}

std::string DashboardSessions::Mac(const std::string& text) const {
  std::string raw = HmacSha256(key_, text);
  return Hex(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
}

std::string DashboardSessions::Issue(int64_t now_ms, int64_t lifetime_ms) const {
  unsigned char nonce[16];
  if (RAND_bytes(nonce, sizeof nonce) != 1) return "";
  std::string body = "v1." + std::to_string(now_ms + lifetime_ms) + "." + Hex(nonce, sizeof nonce);
  return body + "." + Mac(body);
}

bool DashboardSessions::Valid(const std::string& cookie, int64_t now_ms) const {
  if (!enabled() || cookie.size() > 256) return false;
  std::vector<std::string> parts = SplitDots(cookie);
  if (parts.size() != 4 || parts[0] != "v1" || parts[1].empty() || parts[1].size() > 18) return false;
  for (char c : parts[1]) {
    if (c < '0' || c > '9') return false;
  }
  std::string body = parts[0] + "." + parts[1] + "." + parts[2];
  if (!SameSecret(parts[3], Mac(body))) return false;
  return std::stoll(parts[1]) > now_ms;
}

std::string DashboardSessions::CsrfFor(const std::string& cookie) const { return Mac("csrf:" + cookie); }

std::optional<std::string> RequestCookie(const HttpRequest& request, const std::string& name) {
  auto [begin, end] = request.headers.equal_range("Cookie");
  for (auto it = begin; it != end; ++it) {
    const std::string& header = it->second;
    size_t start = 0;
    while (start < header.size()) {
      size_t semicolon = header.find(';', start);
      if (semicolon == std::string::npos) semicolon = header.size();
      std::string pair = header.substr(start, semicolon - start);
      size_t first = pair.find_first_not_of(' ');
      size_t equals = pair.find('=');
      if (first != std::string::npos && equals != std::string::npos && pair.substr(first, equals - first) == name) {
        return pair.substr(equals + 1);
      }
      start = semicolon + 1;
    }
  }
  return std::nullopt;
}

}  // namespace tessera::server
