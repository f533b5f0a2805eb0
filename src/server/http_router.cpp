#include "server/http_router.h"

namespace tessera::server {
namespace {

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 1;  // paths start with '/'
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> PercentDecode(const std::string& text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      int high = HexValue(text[i + 1]), low = HexValue(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out += static_cast<char>(high * 16 + low);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

Route& HttpRouter::Add(std::string method, std::string pattern, RouteHandler handler) {
  Route route;
  route.method = std::move(method);
  route.segments = SplitPath(pattern);
  route.pattern = std::move(pattern);
  route.handler = std::move(handler);
  routes_.push_back(std::move(route));
  return routes_.back();
}

Route& HttpRouter::AddStreamed(std::string method, std::string pattern, ConsumerFactory consumer,
                               uint64_t body_limit) {
  Route& route = Add(std::move(method), std::move(pattern), nullptr);
  route.consumer = std::move(consumer);
  route.body_limit = body_limit;
  return route;
}

const Route* HttpRouter::Find(const std::string& method, const std::string& path,
                              std::vector<std::string>* captures) const {
  if (path.empty() || path[0] != '/') return nullptr;
  std::vector<std::string> parts = SplitPath(path);
  for (const Route& route : routes_) {
    if (route.method != method || route.segments.size() != parts.size()) continue;
    std::vector<std::string> found;
    bool matches = true;
    for (size_t i = 0; i < parts.size() && matches; ++i) {
      if (route.segments[i] == "{}") {
        auto decoded = PercentDecode(parts[i], false);
        matches = decoded.has_value() && !parts[i].empty();
        if (matches) found.push_back(std::move(*decoded));
      } else {
        matches = route.segments[i] == parts[i];
      }
    }
    if (!matches) continue;
    *captures = std::move(found);
    return &route;
  }
  return nullptr;
}

}  // namespace tessera::server
