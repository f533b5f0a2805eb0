// A streaming multipart/form-data parser (RFC 7578): fed the body in pieces of
// any size, it reports each part's headers, its data as it arrives, and its end.
// Memory stays bounded (a part's headers are capped, data is passed through), so
// an upload of any size streams to its file.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "util/status.h"

namespace tessera::server {

struct MultipartPart {
  std::string name;       // the form field
  std::string filename;   // empty for a plain field
  std::string content_type;
};

struct MultipartCallbacks {
  std::function<Status(const MultipartPart& part)> begin;
  std::function<Status(const char* data, size_t size)> data;
  std::function<Status()> end;
};

// The boundary of a "multipart/form-data; boundary=..." Content-Type; nullopt
// when the type is another or the boundary is missing or malformed.
std::optional<std::string> MultipartBoundary(const std::string& content_type);

class MultipartParser {
 public:
  MultipartParser(std::string boundary, MultipartCallbacks callbacks);

  // A piece of the body. kInvalid for a malformed body; a callback's error as is.
  Status Feed(const char* data, size_t size);
  // The body ended: kInvalid unless the closing boundary was seen.
  Status Finish();

 private:
  enum class State { kPreamble, kAfterDelimiter, kHeaders, kBody, kDone };
  Status StartPart(const std::string& headers);

  const std::string boundary_;   // "--" + boundary
  const std::string delimiter_;  // "\r\n--" + boundary
  MultipartCallbacks callbacks_;
  State state_ = State::kPreamble;
  std::string pending_;
};

}  // namespace tessera::server
