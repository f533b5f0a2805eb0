// Routes by method and path pattern ("/status/{}": one captured segment per {}),
// with what each route does with its body.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/http_message.h"
#include "util/status.h"

namespace tessera::server {

// A body read as it arrives (uploads), never held whole. Made once the head is
// read; Consume sees the decoded body bytes (chunked or not) in order; Finish
// answers once all arrived. A Consume error stops the read at once and is the
// answer (HttpStatusFor). Destroying a consumer that did not finish must undo
// what it wrote.
class BodyConsumer {
 public:
  virtual ~BodyConsumer() = default;
  virtual Status Consume(const char* data, size_t size) = 0;
  virtual void Finish(const HttpRequest& request, HttpResponse& response) = 0;
};

using RouteHandler = std::function<void(const HttpRequest& request, HttpResponse& response)>;
using ConsumerFactory = std::function<Result<std::unique_ptr<BodyConsumer>>(const HttpRequest& head)>;

struct Route {
  std::string method;
  std::string pattern;
  std::vector<std::string> segments;  // the pattern split at '/'
  RouteHandler handler;               // body in memory (at most the server's small-body limit)
  ConsumerFactory consumer;           // or a streamed body
  uint64_t body_limit = 0;            // streamed routes: most body bytes accepted
  bool needs_no_token = false;        // GET /health
  bool not_rate_limited = false;      // probes and metrics
  // Creates jobs (POST /generate, /upscale, a batch upload, a retry): refused
  // with 503 while the server drains.
  bool submits_work = false;
  // The handler is quick and never waits on a lock held for long (a probe, one
  // indexed read): it runs on the event loop, saving two thread switches.
  bool runs_on_event_loop = false;
  // When set, tried first on the event loop: answers from memory and returns
  // true, or returns false (nothing answered) and `handler` runs on a handler
  // thread. GET /status: a queued or running job from the scheduler's memory,
  // a finished one from the store.
  std::function<bool(const HttpRequest& request, HttpResponse& response)> from_memory;
};

class HttpRouter {
 public:
  Route& Add(std::string method, std::string pattern, RouteHandler handler);
  Route& AddStreamed(std::string method, std::string pattern, ConsumerFactory consumer, uint64_t body_limit);

  // The route for `method` and `path`, with its {} segments percent-decoded into
  // `captures`; nullptr when none.
  const Route* Find(const std::string& method, const std::string& path, std::vector<std::string>* captures) const;

 private:
  std::vector<Route> routes_;
};

// "%2e%2E" -> "..": percent-decoding; '+' stays '+' in paths. Empty on a bad escape.
std::optional<std::string> PercentDecode(const std::string& text, bool plus_is_space);

}  // namespace tessera::server
