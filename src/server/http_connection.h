// Internal to the HTTP server (http_server.cpp and the files it is split into):
// the shared state of a running server and the coroutines that serve one
// connection, write answers and stream events.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
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
        accept_strand(net::make_strand(io)),
        acceptor(io),
        work(net::make_work_guard(io)) {}

  const HttpServerOptions options;
  const HttpRouter& router;
  const RequestGuard guard;
  const RequestObserver observer;
  // Declared before `io`: the connections' coroutines, destroyed with `io` when
  // a stop had to be forced, give their slots back and leave the registry.
  ConnectionLimits limits;
  // Every open connection, so Stop can close them all and let the loop drain
  // (an io_context destroyed with coroutines still pending is not safe).
  struct Connection {
    beast::tcp_stream* stream = nullptr;  // null once the connection ended; read on `executor` only
    net::any_io_executor executor;
  };
  std::mutex connections_mutex;
  std::set<std::shared_ptr<Connection>> connections;
  net::io_context io;
  net::thread_pool handlers;  // joined before `io` goes
  net::strand<net::io_context::executor_type> accept_strand;  // the acceptor's, so Stop can close it
  Tcp::acceptor acceptor;
  // Keeps the loop running while idle; Stop lets it go, so the loop ends once
  // every connection has.
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  int port = 0;
  std::atomic<bool> stopping{false};
  std::vector<std::thread> io_threads;

  // Loop threads still running (Run's own included).
  std::mutex loop_mutex;
  std::condition_variable loop_ended;
  int loops_running = 0;
};

// Registers a connection for its life (a member of its coroutine's frame).
class ConnectionRegistration {
 public:
  ConnectionRegistration(HttpServer::Impl& server, beast::tcp_stream& stream);
  ~ConnectionRegistration();
  ConnectionRegistration(const ConnectionRegistration&) = delete;
  ConnectionRegistration& operator=(const ConnectionRegistration&) = delete;

 private:
  HttpServer::Impl& server_;
  std::shared_ptr<HttpServer::Impl::Connection> connection_;
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
