// Status and Result<T>: errors as values across module boundaries.
//
// A Status is cheap to copy when ok (no allocation). Every non-ok Status carries a
// code that callers branch on and a short message meant for a person: it says what
// went wrong and, where possible, what to do about it.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace tessera {

// Error categories shared by every layer. The protocol maps them onto its stable
// wire status codes (src/protocol/wire_status.h); the numbering here is internal.
enum class StatusCode {
  kOk = 0,
  kProtocol,           // malformed frame or stream
  kInvalid,            // a request or argument that can never succeed as sent
  kLimit,              // a configured limit or budget would be exceeded
  kBadImage,           // image bytes that cannot be decoded
  kOutOfMemory,        // an allocation failed or the memory budget said no
  kDeviceUnavailable,  // the requested device is absent or failed to start
  kTimeout,            // the deadline passed; work was cancelled
  kInternal,           // a bug or an unexpected failure of a dependency
  kUnsupported,        // valid, but this build cannot do it
  kIo,                 // reading or writing a file or pipe failed
  kNotFound,           // a named thing does not exist
  kConflict,           // the thing changed under the caller (a fenced write that no longer holds)
  kUnavailable,        // a service depended on (the shared database) cannot be reached now: retry later
};

const char* StatusCodeName(StatusCode code);

class Status {
 public:
  Status() = default;  // ok
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "code: message", for logs.
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Shorthands that keep call sites readable: return InvalidError("...").
inline Status ProtocolError(std::string m) { return {StatusCode::kProtocol, std::move(m)}; }
inline Status InvalidError(std::string m) { return {StatusCode::kInvalid, std::move(m)}; }
inline Status LimitError(std::string m) { return {StatusCode::kLimit, std::move(m)}; }
inline Status BadImageError(std::string m) { return {StatusCode::kBadImage, std::move(m)}; }
inline Status InternalError(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status IoError(std::string m) { return {StatusCode::kIo, std::move(m)}; }
inline Status NotFoundError(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status ConflictError(std::string m) { return {StatusCode::kConflict, std::move(m)}; }

// Either a value or a non-ok Status.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.ok()) status_ = InternalError("Result built from an ok Status without a value");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace tessera
