// Query parameters read like bodies: a value that is present must be valid, and
// a bad one is a kInvalid Status naming the parameter and what it allows (the
// route answers 400 with it).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "server/http_message.h"
#include "util/status.h"

namespace tessera::server {

// "a=1&b=x%20y" -> {a: "1", b: "x y"}; the first of repeated names wins.
Result<std::map<std::string, std::string>> ParseQueryString(const std::string& text);

// true / false (absent: `absent`).
Result<bool> BoolParam(const HttpRequest& request, const std::string& name, bool absent);
// A decimal number of seconds within [low, high] (absent: `absent`).
Result<double> SecondsParam(const HttpRequest& request, const std::string& name, double absent, double low,
                            double high);
// A whole number within [low, high] (absent: `absent`).
Result<int64_t> IntegerParam(const HttpRequest& request, const std::string& name, int64_t absent, int64_t low,
                             int64_t high);

}  // namespace tessera::server
