#include "server/multipart_parser.h"

#include <strings.h>

#include <vector>

namespace tessera::server {
namespace {

constexpr size_t kMaxPartHeaders = 8 * 1024;
constexpr size_t kMaxPreamble = 64 * 1024;

std::string Trim(const std::string& text) {
  size_t first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

// `name` of a "type; a=b; name="x"" header value, unquoted; nullopt when absent.
std::optional<std::string> HeaderParameter(const std::string& value, const std::string& name) {
  size_t start = value.find(';');
  while (start != std::string::npos) {
    size_t next = value.find(';', start + 1);
    // A quoted value may hold ';': skip to the closing quote first.
    size_t equals = value.find('=', start + 1);
    if (equals == std::string::npos) return std::nullopt;
    std::string key = Trim(value.substr(start + 1, equals - start - 1));
    std::string raw;
    size_t after = equals + 1;
    while (after < value.size() && (value[after] == ' ' || value[after] == '\t')) ++after;
    if (after < value.size() && value[after] == '"') {
      size_t close = after + 1;
      while (close < value.size() && value[close] != '"') {
        if (value[close] == '\\' && close + 1 < value.size()) ++close;
        ++close;
      }
      for (size_t i = after + 1; i < close && i < value.size(); ++i) {
        if (value[i] == '\\' && i + 1 < close) ++i;
        raw += value[i];
      }
      next = value.find(';', close);
    } else {
      raw = Trim(value.substr(after, next == std::string::npos ? std::string::npos : next - after));
    }
    if (::strcasecmp(key.c_str(), name.c_str()) == 0) return raw;
    start = next;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> MultipartBoundary(const std::string& content_type) {
  std::string type = Trim(content_type.substr(0, content_type.find(';')));
  if (::strcasecmp(type.c_str(), "multipart/form-data") != 0) return std::nullopt;
  auto boundary = HeaderParameter(content_type, "boundary");
  if (!boundary || boundary->empty() || boundary->size() > 70) return std::nullopt;
  return boundary;
}

MultipartParser::MultipartParser(std::string boundary, MultipartCallbacks callbacks)
    : boundary_("--" + boundary), delimiter_("\r\n--" + boundary), callbacks_(std::move(callbacks)) {}

Status MultipartParser::StartPart(const std::string& headers) {
  MultipartPart part;
  bool disposition = false;
  size_t start = 0;
  while (start < headers.size()) {
    size_t end = headers.find("\r\n", start);
    if (end == std::string::npos) end = headers.size();
    std::string line = headers.substr(start, end - start);
    start = end + 2;
    size_t colon = line.find(':');
    if (colon == std::string::npos) return InvalidError("multipart: a part header line has no ':'");
    std::string name = Trim(line.substr(0, colon));
    std::string value = Trim(line.substr(colon + 1));
    if (::strcasecmp(name.c_str(), "Content-Disposition") == 0) {
      disposition = true;
      part.name = HeaderParameter(value, "name").value_or("");
      part.filename = HeaderParameter(value, "filename").value_or("");
    } else if (::strcasecmp(name.c_str(), "Content-Type") == 0) {
      part.content_type = value;
    }
  }
  if (!disposition) return InvalidError("multipart: a part has no Content-Disposition header");
  return callbacks_.begin ? callbacks_.begin(part) : Status::Ok();
}

Status MultipartParser::Feed(const char* data, size_t size) {
  pending_.append(data, size);
  size_t pos = 0;
  Status status;
  bool more = true;
  while (more && status.ok()) {
    switch (state_) {
      case State::kPreamble: {
        size_t at = pending_.find(boundary_, pos);
        if (at == std::string::npos) {
          if (pending_.size() > kMaxPreamble) return InvalidError("multipart: no boundary line where the body starts");
          more = false;
          break;
        }
        pos = at + boundary_.size();
        state_ = State::kAfterDelimiter;
        break;
      }
      case State::kAfterDelimiter: {
        if (pending_.size() - pos < 2) {
          more = false;
          break;
        }
        if (pending_.compare(pos, 2, "--") == 0) {
          state_ = State::kDone;
          break;
        }
        size_t crlf = pending_.find("\r\n", pos);
        if (crlf == std::string::npos) {
          if (pending_.size() - pos > 256) return InvalidError("multipart: a boundary line does not end");
          more = false;
          break;
        }
        if (pending_.find_first_not_of(" \t", pos) != crlf) return InvalidError("multipart: junk after a boundary");
        pos = crlf;  // the CRLF that ends the boundary line starts the header block's search
        state_ = State::kHeaders;
        break;
      }
      case State::kHeaders: {
        size_t end = pending_.find("\r\n\r\n", pos);
        if (end == std::string::npos) {
          if (pending_.size() - pos > kMaxPartHeaders) {
            return InvalidError("multipart: a part's headers are longer than " + std::to_string(kMaxPartHeaders) +
                                " bytes");
          }
          more = false;
          break;
        }
        std::string headers = end > pos ? pending_.substr(pos + 2, end - pos - 2) : "";
        pos = end + 4;
        state_ = State::kBody;
        status = StartPart(headers);
        break;
      }
      case State::kBody: {
        size_t at = pending_.find(delimiter_, pos);
        if (at == std::string::npos) {
          // Everything but a possible start of the delimiter can go.
          size_t keep = delimiter_.size() - 1;
          size_t safe = pending_.size() > pos + keep ? pending_.size() - keep : pos;
          if (safe > pos && callbacks_.data) status = callbacks_.data(pending_.data() + pos, safe - pos);
          pos = safe;
          more = false;
          break;
        }
        if (at > pos && callbacks_.data) status = callbacks_.data(pending_.data() + pos, at - pos);
        if (status.ok() && callbacks_.end) status = callbacks_.end();
        pos = at + delimiter_.size();
        state_ = State::kAfterDelimiter;
        break;
      }
      case State::kDone:
        pos = pending_.size();  // the epilogue is ignored
        more = false;
        break;
    }
  }
  pending_.erase(0, pos);
  return status;
}

Status MultipartParser::Finish() {
  if (state_ != State::kDone) return InvalidError("multipart: the body ended before its closing boundary");
  return Status::Ok();
}

}  // namespace tessera::server
