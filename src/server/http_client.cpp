#include "server/http_client.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace tessera::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

int Failed(std::string* error, std::string message) {
  *error = std::move(message);
  return -1;
}

// The answer's status, or -1 with `error` naming the step that failed.
net::awaitable<int> Post(const HttpPostRequest& request, std::string* error) {
  auto executor = co_await net::this_coro::executor;
  net::ip::tcp::resolver resolver(executor);
  beast::tcp_stream stream(executor);
  stream.expires_after(request.connect_timeout);
  auto [resolve_error, endpoints] =
      co_await resolver.async_resolve(request.host, request.port, net::as_tuple(net::use_awaitable));
  if (resolve_error) co_return Failed(error, "cannot resolve " + request.host + ": " + resolve_error.message());
  auto [connect_error, endpoint] = co_await stream.async_connect(endpoints, net::as_tuple(net::use_awaitable));
  if (connect_error) co_return Failed(error, "cannot connect to " + request.host + ":" + request.port + ": " +
                                       connect_error.message());
  http::request<http::string_body> message{http::verb::post, request.target, 11};
  message.set(http::field::host, request.host + ":" + request.port);
  message.set(http::field::content_type, request.content_type);
  for (const auto& [name, value] : request.headers) message.set(name, value);
  message.keep_alive(false);
  message.body() = request.body;
  message.prepare_payload();
  stream.expires_after(request.io_timeout);
  auto [write_error, written] = co_await http::async_write(stream, message, net::as_tuple(net::use_awaitable));
  if (write_error) co_return Failed(error, "sending the request failed: " + write_error.message());
  beast::flat_buffer buffer;
  http::response_parser<http::empty_body> parser;
  parser.skip(true);  // only the status matters; the answer's body is not read
  stream.expires_after(request.io_timeout);
  auto [read_error, read] = co_await http::async_read_header(stream, buffer, parser, net::as_tuple(net::use_awaitable));
  if (read_error) co_return Failed(error, "reading the answer failed: " + read_error.message());
  beast::error_code ignored;
  stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  co_return static_cast<int>(parser.get().result_int());
}

}  // namespace

Result<int> HttpPost(const HttpPostRequest& request) {
  net::io_context io;
  int status = -1;
  std::string error = "the request did not run";
  net::co_spawn(io, Post(request, &error), [&](std::exception_ptr failure, int result) {
    status = failure ? -1 : result;
    if (failure) error = "the HTTP client failed unexpectedly";
  });
  io.run();
  if (status < 0) return IoError(error);
  return status;
}

}  // namespace tessera::server
