#include "server/http_server.h"

#include <sys/resource.h>

#include "server/http_connection.h"
#include "util/log.h"

namespace tessera::server {
namespace {

// A refused connection gets its 503 with a short deadline, then is closed.
net::awaitable<void> RefuseConnection(beast::tcp_stream stream) {
  static const std::string kBody = "{\"error\":\"too many connections; retry in a moment\"}";
  static const std::string kBusy =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
      "Retry-After: 1\r\nContent-Length: " + std::to_string(kBody.size()) + "\r\n\r\n" + kBody;
  stream.expires_after(std::chrono::seconds(2));
  co_await net::async_write(stream, net::buffer(kBusy), net::as_tuple(net::use_awaitable));
  beast::error_code ignored;
  stream.socket().shutdown(Tcp::socket::shutdown_both, ignored);
}

net::awaitable<void> AcceptLoop(HttpServer::Impl& server) {
  while (!server.stopping) {
    auto [error, socket] =
        co_await server.acceptor.async_accept(net::make_strand(server.io), net::as_tuple(net::use_awaitable));
    if (error == net::error::operation_aborted || server.stopping) co_return;
    if (error) {
      // Out of descriptors (EMFILE) and friends: wait a little instead of spinning.
      LogWarn("http_accept_failed").Field("error", error.message());
      net::steady_timer pause(server.io, std::chrono::milliseconds(50));
      co_await pause.async_wait(net::as_tuple(net::use_awaitable));
      continue;
    }
    beast::error_code ignored;
    socket.set_option(Tcp::no_delay(true), ignored);
    std::string remote = socket.remote_endpoint(ignored).address().to_string();
    auto executor = socket.get_executor();
    beast::tcp_stream stream(std::move(socket));
    ConnectionLimits::Slot slot = server.limits.Acquire(remote);
    if (!slot) {
      LogWarn("http_connection_refused").Field("client", remote).Field("open", server.limits.open());
      net::co_spawn(executor, RefuseConnection(std::move(stream)), net::detached);
      continue;
    }
    net::co_spawn(executor, ServeConnection(server, std::move(stream), std::move(remote), std::move(slot)),
                  [](std::exception_ptr failure) {
                    if (!failure) return;
                    try {
                      std::rethrow_exception(failure);
                    } catch (const std::exception& e) {
                      LogError("http_connection_failed").Field("error", e.what());
                    }
                  });
  }
}

// Thousands of sockets need thousands of descriptors: the soft limit is raised to
// the hard one (the listener still refuses beyond max_connections).
void RaiseDescriptorLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

ConnectionRegistration::ConnectionRegistration(HttpServer::Impl& server, beast::tcp_stream& stream)
    : server_(server),
      connection_(std::make_shared<HttpServer::Impl::Connection>(
          HttpServer::Impl::Connection{&stream, stream.get_executor()})) {
  std::lock_guard lock(server_.connections_mutex);
  server_.connections.insert(connection_);
}

ConnectionRegistration::~ConnectionRegistration() {
  connection_->stream = nullptr;  // on the connection's executor, like every read of it
  std::lock_guard lock(server_.connections_mutex);
  server_.connections.erase(connection_);
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::Bind(HttpServerOptions options, const HttpRouter& router,
                                                     RequestGuard guard, RequestObserver observer) {
  RaiseDescriptorLimit();
  auto impl = std::make_unique<Impl>(std::move(options), router, std::move(guard), std::move(observer));
  const HttpServerOptions& o = impl->options;
  beast::error_code error;
  std::string host = o.host == "localhost" ? "127.0.0.1" : o.host;
  auto address = net::ip::make_address(host, error);
  if (error) return InvalidError("cannot listen on " + o.host + ": not an IP address");
  Tcp::endpoint endpoint(address, static_cast<unsigned short>(o.port));
  impl->acceptor.open(endpoint.protocol(), error);
  if (!error) impl->acceptor.set_option(net::socket_base::reuse_address(true), error);
  if (!error) impl->acceptor.bind(endpoint, error);
  if (!error) impl->acceptor.listen(net::socket_base::max_listen_connections, error);
  if (error) {
    return IoError("cannot listen on " + o.host + ":" + std::to_string(o.port) + " (" + error.message() + ")");
  }
  impl->port = impl->acceptor.local_endpoint().port();
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

int HttpServer::port() const { return impl_->port; }

size_t HttpServer::open_connections() const { return impl_->limits.open(); }

namespace {

void RunLoop(HttpServer::Impl& server) {
  server.io.run();
  std::lock_guard lock(server.loop_mutex);
  server.loops_running -= 1;
  server.loop_ended.notify_all();
}

}  // namespace

void HttpServer::Run() {
  Impl& server = *impl_;
  {
    std::lock_guard lock(server.loop_mutex);
    if (server.stopping) return;
    server.loops_running = server.options.io_threads;
  }
  net::co_spawn(server.accept_strand, AcceptLoop(server), net::detached);
  for (int i = 1; i < server.options.io_threads; ++i) server.io_threads.emplace_back([&server] { RunLoop(server); });
  RunLoop(server);
}

void HttpServer::Stop() {
  Impl& server = *impl_;
  {
    std::lock_guard lock(server.loop_mutex);
    if (server.stopping.exchange(true)) return;
  }
  // No new connections; every open one closed on its own executor, so each
  // coroutine ends (a handler in flight finishes first); then the loop, out of
  // work, returns. Only if that takes too long is it stopped with work pending.
  net::post(server.accept_strand, [&server] {
    beast::error_code ignored;
    server.acceptor.close(ignored);
  });
  {
    // Released before the loop is let go: this thread holds no connection's
    // executor once the loop may end.
    std::vector<std::shared_ptr<Impl::Connection>> open;
    {
      std::lock_guard lock(server.connections_mutex);
      open.assign(server.connections.begin(), server.connections.end());
    }
    for (const auto& connection : open) {
      net::dispatch(connection->executor, [connection] {
        if (connection->stream == nullptr) return;
        beast::error_code ignored;
        connection->stream->socket().shutdown(Tcp::socket::shutdown_both, ignored);
        connection->stream->socket().close(ignored);
      });
    }
  }
  server.work.reset();
  {
    std::unique_lock lock(server.loop_mutex);
    if (!server.loop_ended.wait_for(lock, std::chrono::seconds(10), [&] { return server.loops_running <= 0; })) {
      LogWarn("http_stop_forced").Field("open_connections", server.limits.open());
      server.io.stop();
    }
  }
  for (std::thread& thread : server.io_threads) {
    if (thread.joinable() && thread.get_id() != std::this_thread::get_id()) thread.join();
  }
  server.handlers.join();
}

}  // namespace tessera::server
