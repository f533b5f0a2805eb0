// One HTTP/1.1 POST on Boost.Beast, for the webhook sender: resolve, connect,
// send, read the answer's status, each step within its deadline. Plain http only
// (this build has no TLS).
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "util/status.h"

namespace tessera::server {

struct HttpPostRequest {
  std::string host;
  std::string port = "80";
  std::string target = "/";
  std::map<std::string, std::string> headers;
  std::string body;
  std::string content_type = "application/json";
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds io_timeout{10000};  // sending the request, reading the answer
};

// The answer's status code, or kIo naming the step that failed (resolve,
// connect, write, read, timeout).
Result<int> HttpPost(const HttpPostRequest& request);

}  // namespace tessera::server
