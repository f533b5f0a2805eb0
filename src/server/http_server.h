// The HTTP/1.1 server under the routes: Boost.Beast on Asio, C++20 coroutines
// (docs/server.md says why). A few event-loop threads carry every connection;
// route handlers run on a separate pool of handler threads, so a slow handler
// (a store transaction, an fsync) never stalls the loop, and a connection that
// only waits (keep-alive, server-sent events, ?wait=true) holds no thread.
//
// Each connection is held to deadlines: the whole request head within
// header_timeout, each 64 KiB of body (or its end) within body_timeout, an idle
// keep-alive connection closed after idle_timeout, every write within
// write_timeout. Connections are capped in total and per client address (503
// when full). Bodies count the bytes actually received, chunked or not, and stop
// at the route's limit with 413 at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "server/http_message.h"
#include "server/http_router.h"
#include "util/status.h"

namespace tessera::server {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port
  int io_threads = 2;
  int handler_threads = 8;
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds body_timeout{30000};
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds write_timeout{30000};
  std::chrono::milliseconds event_heartbeat{15000};
  size_t max_connections = 4096;
  size_t max_connections_per_client = 128;
  size_t max_header_bytes = 16 * 1024;
  uint64_t max_memory_body_bytes = 1024 * 1024;  // routes that take their body in memory
};

// Runs before the route for every request; answers (returns true) to refuse it
// (a missing token, a rate limit). `route` is nullptr for unknown paths.
using RequestGuard = std::function<bool(const HttpRequest& request, const Route* route, HttpResponse& response)>;
// Sees every answered request (metrics, logs).
using RequestObserver = std::function<void(const HttpRequest& request, int status)>;

class HttpServer {
 public:
  // Binds the port; serving starts with Run().
  static Result<std::unique_ptr<HttpServer>> Bind(HttpServerOptions options, const HttpRouter& router,
                                                   RequestGuard guard, RequestObserver observer);
  ~HttpServer();

  int port() const;
  // Serves on the event-loop threads until Stop(); returns then.
  void Run();
  // Stops accepting, closes every connection, waits for running handlers.
  // Idempotent; callable from any thread.
  void Stop();
  size_t open_connections() const;

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::server
