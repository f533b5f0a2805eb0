#include "server/http_message.h"

#include <strings.h>

namespace tessera::server {

bool HeaderNameLess::operator()(const std::string& a, const std::string& b) const {
  return ::strcasecmp(a.c_str(), b.c_str()) < 0;
}

std::string HttpRequest::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

bool HttpRequest::HasHeader(const std::string& name) const { return headers.count(name) > 0; }

std::string HttpRequest::Param(const std::string& name) const {
  auto it = query.find(name);
  return it == query.end() ? std::string() : it->second;
}

bool HttpRequest::HasParam(const std::string& name) const { return query.count(name) > 0; }

uint64_t FileBody::TotalBytes() const {
  uint64_t total = 0;
  for (const Segment& segment : segments) total += segment.from_file ? segment.length : segment.text.size();
  return total;
}

void HttpResponse::SetHeader(const std::string& name, const std::string& value) {
  headers.erase(name);
  headers.emplace(name, value);
}

std::string HttpResponse::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

}  // namespace tessera::server
