// The request and answer the routes see: plain C++ values, no HTTP library types,
// so route files are tested and read without knowing the server underneath
// (src/server/http_server.h).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tessera::server {

// Header names compare without regard to case (RFC 9110 section 5.1).
struct HeaderNameLess {
  bool operator()(const std::string& a, const std::string& b) const;
};
using HttpHeaders = std::multimap<std::string, std::string, HeaderNameLess>;

struct HttpRequest {
  std::string method;  // "GET"
  std::string target;  // as sent: "/status/abc?x=1"
  std::string path;    // "/status/abc" (percent-decoding is per segment, in `captures`)
  std::map<std::string, std::string> query;  // decoded; the first of repeated names wins
  HttpHeaders headers;
  std::string remote_addr;
  std::vector<std::string> captures;  // the route's {} segments, percent-decoded
  std::string body;                   // routes that take their body in memory

  std::string Header(const std::string& name) const;
  bool HasHeader(const std::string& name) const;
  std::string Param(const std::string& name) const;
  bool HasParam(const std::string& name) const;
};

// Parts of a file sent as the body: whole, one range, or several ranges as
// multipart/byteranges (literal text between them). The descriptor is owned.
struct FileBody {
  struct Segment {
    bool from_file = false;
    std::string text;     // written as is when not from_file
    uint64_t offset = 0;  // from_file: `length` bytes of the file from `offset`
    uint64_t length = 0;
  };
  std::shared_ptr<int> fd;  // closed with the last copy
  std::vector<Segment> segments;
  uint64_t TotalBytes() const;
};

class EventSubscriber;

struct HttpResponse {
  int status = 200;
  HttpHeaders headers;
  std::string content_type;
  std::string body;
  std::optional<FileBody> file;  // instead of `body`
  // Server-sent events: the answer is a stream fed by this subscriber, after
  // `body` (a first frame, may be empty); `events_end_after_body`: the stream
  // ends after it (a followed job that already finished).
  std::shared_ptr<EventSubscriber> events;
  bool events_end_after_body = false;
  // An answer that waits for something (POST /upscale?wait=true): the server
  // calls `wait` with a resume function, holds the connection without a thread,
  // and once resume is called runs `then` on a handler thread to make the answer.
  std::function<void(std::function<void()> resume)> wait;
  std::function<void(HttpResponse& response)> then;

  void SetHeader(const std::string& name, const std::string& value);
  std::string Header(const std::string& name) const;
};

}  // namespace tessera::server
