// Internal to the HTTP server (http_server.cpp and the files it is split into):
// the shared state of a running server and the coroutines that serve one
// connection, write answers and stream events.
#pragma once

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "server/connection_limits.h"
#include "server/http_server.h"

namespace tessera::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Tcp = net::ip::tcp;

struct HttpServer::Impl {
  Impl(HttpServerOptions opts, const HttpRouter& r, RequestGuard g, RequestObserver o)
      : options(std::move(opts)),
        router(r),
        guard(std::move(g)),
        observer(std::move(o)),
        limits(options.max_connections, options.max_connections_per_client),
        io(options.io_threads),
        handlers(static_cast<size_t>(options.handler_threads)),
        acceptor(io) {}

  const HttpServerOptions options;
  const HttpRouter& router;
  const RequestGuard guard;
  const RequestObserver observer;
  // Declared before `io`: the connections' coroutines, destroyed with `io`,
  // give their slots back.
  ConnectionLimits limits;
  net::io_context io;
  net::thread_pool handlers;  // joined before `io` goes
  Tcp::acceptor acceptor;
  int port = 0;
  std::atomic<bool> stopping{false};
  std::vector<std::thread> io_threads;
};

// Serves requests on one connection until it closes, fails a deadline or the
// client leaves.
net::awaitable<void> ServeConnection(HttpServer::Impl& server, beast::tcp_stream stream, std::string remote,
                                     ConnectionLimits::Slot slot);

// Runs `work` on a handler thread; resumes on the connection's executor.
net::awaitable<void> OnHandlerThread(HttpServer::Impl& server, const std::function<void()>& work);

// Writes `response` (string body or file parts); false when the write failed.
net::awaitable<bool> WriteResponse(HttpServer::Impl& server, beast::tcp_stream& stream, HttpResponse& response,
                                   unsigned version, bool keep_alive);

// Streams the events of `response.events` until the subscriber is closed or
// overflows, the job it follows finished, or the client leaves (noticed at once:
// a read on the socket ends). The connection closes afterwards.
net::awaitable<void> StreamEvents(HttpServer::Impl& server, beast::tcp_stream& stream, HttpResponse& response,
                                  unsigned version);

}  // namespace tessera::server
