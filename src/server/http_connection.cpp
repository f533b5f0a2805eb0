// One connection's request loop: idle wait, request head under its deadline,
// guards and routing, the body (in memory or streamed to the route's consumer),
// the handler on a handler thread, the answer.
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <limits>

#include "server/http_connection.h"
#include "server/http_status_map.h"
#include "server/query_params.h"
#include "util/log.h"

namespace tessera::server {
namespace {

constexpr size_t kBodyChunk = 64 * 1024;
// After refusing a body, what the client still sends is read and dropped for a
// moment, so that it reads the answer instead of a reset connection.
constexpr size_t kLingerBytes = 4 * 1024 * 1024;
constexpr auto kLingerTime = std::chrono::seconds(2);

net::awaitable<void> RunWork(const std::function<void()>* work) {
  (*work)();
  co_return;
}

HttpRequest FromHead(const http::request<http::buffer_body>& head, const std::string& remote) {
  HttpRequest request;
  request.method = std::string(head.method_string());
  request.target = std::string(head.target());
  request.remote_addr = remote;
  size_t question = request.target.find('?');
  request.path = request.target.substr(0, question);
  for (const auto& field : head) request.headers.emplace(std::string(field.name_string()), std::string(field.value()));
  return request;
}

// Reads and drops what the client still sends (bounded), then closes.
net::awaitable<void> LingerAndClose(beast::tcp_stream& stream) {
  beast::error_code error;
  stream.socket().shutdown(Tcp::socket::shutdown_send, error);
  std::unique_ptr<char[]> sink(new char[kBodyChunk]);
  size_t dropped = 0;
  stream.expires_after(kLingerTime);
  while (dropped < kLingerBytes) {
    auto [read_error, n] =
        co_await stream.async_read_some(net::buffer(sink.get(), kBodyChunk), net::as_tuple(net::use_awaitable));
    if (read_error) break;
    dropped += n;
  }
  stream.socket().close(error);
}

struct BodyOutcome {
  bool ok = true;
  bool connection_lost = false;  // nothing more can be sent
  int status = 0;                // when !ok and the connection is usable: the answer
  std::string message;
};

// Reads the body in kBodyChunk pieces, each under body_timeout, handing each to
// `take` (which may refuse). Stops at once past `limit`.
net::awaitable<BodyOutcome> ReadBody(HttpServer::Impl& server, beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                     http::request_parser<http::buffer_body>& parser, uint64_t limit,
                                     const std::function<Status(const char*, size_t)>& take, bool take_on_handlers) {
  BodyOutcome outcome;
  if (parser.is_done()) co_return outcome;
  if (auto declared = parser.content_length(); declared && *declared > limit) {
    co_return BodyOutcome{false, false, 413,
                          "the body is larger than this route accepts (" + std::to_string(limit) + " bytes)"};
  }
  std::unique_ptr<char[]> chunk(new char[kBodyChunk]);
  uint64_t received = 0;
  while (!parser.is_done()) {
    parser.get().body().data = chunk.get();
    parser.get().body().size = kBodyChunk;
    stream.expires_after(server.options.body_timeout);
    auto [error, ignored] = co_await http::async_read(stream, buffer, parser, net::as_tuple(net::use_awaitable));
    if (error == http::error::need_buffer) error = {};
    if (error) {
      if (error == beast::error::timeout) {
        // The stream closed the socket when its deadline passed: nothing can be answered.
        co_return BodyOutcome{false, true, 0, "the body stopped arriving (no progress within the body deadline)"};
      }
      if (error == http::error::partial_message || error == net::error::eof || error == net::error::connection_reset) {
        co_return BodyOutcome{false, true, 0, "the client left"};
      }
      co_return BodyOutcome{false, false, 400, "malformed body: " + error.message()};
    }
    size_t got = kBodyChunk - parser.get().body().size;
    received += got;
    if (received > limit) {
      co_return BodyOutcome{false, false, 413,
                            "the body is larger than this route accepts (" + std::to_string(limit) + " bytes)"};
    }
    if (got == 0) continue;
    Status taken;
    if (take_on_handlers) {
      std::function<void()> work = [&] { taken = take(chunk.get(), got); };
      co_await OnHandlerThread(server, work);
    } else {
      taken = take(chunk.get(), got);
    }
    if (!taken.ok()) co_return BodyOutcome{false, false, HttpStatusFor(taken.code()), taken.message()};
  }
  co_return outcome;
}

// Runs the handler (or the consumer's Finish) on a handler thread, catching
// whatever it throws as a 500.
net::awaitable<void> RunHandler(HttpServer::Impl& server, const std::function<void(HttpResponse&)>& handler,
                                HttpRequest& request, HttpResponse& response, bool on_event_loop = false) {
  std::function<void()> work = [&] {
    try {
      handler(response);
    } catch (const std::exception& e) {
      LogError("http_handler_failed").Field("path", request.path).Field("error", e.what());
      response = HttpResponse();
      ReplyError(response, 500, std::string("internal error: ") + e.what());
    }
  };
  if (on_event_loop) {
    work();
  } else {
    co_await OnHandlerThread(server, work);
  }
}

// Holds the connection (no thread) until the route's wait resumes it. The wait
// is an Asio timer on the connection's strand that `resume` cancels (posted to
// that strand, so it cannot run before the timer waits): the loop counts it as
// pending work, so it never ends under a waiting connection, and no completion
// handler of the coroutine is ever held, moved or destroyed by another thread.
net::awaitable<void> AwaitResume(const std::function<void(std::function<void()>)>& wait) {
  auto executor = co_await net::this_coro::executor;
  auto woken = std::make_shared<net::steady_timer>(executor, net::steady_timer::time_point::max());
  std::weak_ptr<net::steady_timer> weak = woken;
  wait([weak, executor] {
    net::post(executor, [weak] {
      if (auto timer = weak.lock()) timer->cancel();
    });
  });
  co_await woken->async_wait(net::as_tuple(net::use_awaitable));
}

// Waits for the first byte of the next request for at most idle_timeout;
// false when the connection should close.
net::awaitable<bool> AwaitNextRequest(HttpServer::Impl& server, beast::tcp_stream& stream, beast::flat_buffer& buffer) {
  if (buffer.size() > 0) co_return true;
  buffer.shrink_to_fit();  // an idle connection keeps no body-sized buffer
  stream.expires_after(server.options.idle_timeout);
  auto [error, n] = co_await stream.async_read_some(buffer.prepare(512), net::as_tuple(net::use_awaitable));
  if (error) co_return false;
  buffer.commit(n);
  co_return true;
}

// "Expect: 100-continue": the client waits for this before sending its body,
// once the request is accepted (its route found, its consumer made).
net::awaitable<bool> SendContinue(HttpServer::Impl& server, beast::tcp_stream& stream, const HttpRequest& request,
                                  http::request_parser<http::buffer_body>& parser) {
  if (request.Header("Expect") != "100-continue" || parser.is_done()) co_return true;
  static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  stream.expires_after(server.options.write_timeout);
  auto [error, n] = co_await net::async_write(stream, net::buffer(kContinue), net::as_tuple(net::use_awaitable));
  co_return !error;
}

net::awaitable<void> Answer(HttpServer::Impl& server, beast::tcp_stream& stream, HttpRequest& request,
                            HttpResponse& response, unsigned version, bool keep_alive, bool* written) {
  *written = co_await WriteResponse(server, stream, response, version, keep_alive);
  if (server.observer) server.observer(request, response.status);
}

// Reads the request head, all of it within header_timeout (a client trickling
// bytes gains nothing); answers 431 or 400 itself. False: close.
net::awaitable<bool> ReadHead(HttpServer::Impl& server, beast::tcp_stream& stream, beast::flat_buffer& buffer,
                              http::request_parser<http::buffer_body>& parser) {
  parser.header_limit(static_cast<std::uint32_t>(server.options.max_header_bytes));
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // each route counts its own
  stream.expires_after(server.options.header_timeout);
  auto [error, ignored] = co_await http::async_read_header(stream, buffer, parser, net::as_tuple(net::use_awaitable));
  if (!error) co_return true;
  HttpResponse refusal;
  if (error == http::error::header_limit) {
    ReplyError(refusal, 431, "the request head is larger than " + std::to_string(server.options.max_header_bytes) +
                                 " bytes");
  } else if (error != beast::error::timeout && error != net::error::eof && error != net::error::connection_reset &&
             error != net::error::operation_aborted) {
    ReplyError(refusal, 400, "malformed request: " + error.message());
  } else {
    co_return false;  // a deadline passed (the stream closed the socket) or the client left
  }
  co_await WriteResponse(server, stream, refusal, 11, false);
  co_return false;
}

// The query string, the guards (token, rate limit) and the route. nullptr when
// refused, with the refusal in `response`.
const Route* Admit(HttpServer::Impl& server, HttpRequest& request, HttpResponse& response) {
  size_t question = request.target.find('?');
  auto query = ParseQueryString(question == std::string::npos ? "" : request.target.substr(question + 1));
  if (!query.ok()) {
    ReplyStatus(response, query.status());
    return nullptr;
  }
  request.query = std::move(*query);
  const Route* route = server.router.Find(request.method, request.path, &request.captures);
  if (server.guard && server.guard(request, route, response)) return nullptr;
  if (route == nullptr) ReplyError(response, 404, "no such route: " + request.method + " " + request.path);
  return route;
}

// The body: into the route's consumer (made first, on a handler thread) or into
// request.body, within the route's limit.
net::awaitable<BodyOutcome> TakeBody(HttpServer::Impl& server, beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                     http::request_parser<http::buffer_body>& parser, const Route& route,
                                     HttpRequest& request, std::unique_ptr<BodyConsumer>& consumer) {
  const BodyOutcome lost{false, true, 0, "the connection failed"};
  if (!route.consumer) {
    if (!co_await SendContinue(server, stream, request, parser)) co_return lost;
    co_return co_await ReadBody(server, stream, buffer, parser, server.options.max_memory_body_bytes,
                                [&request](const char* data, size_t size) {
                                  request.body.append(data, size);
                                  return Status::Ok();
                                },
                                false);
  }
  Result<std::unique_ptr<BodyConsumer>> made = InternalError("the body consumer was not made");
  std::function<void()> make = [&] { made = route.consumer(request); };
  co_await OnHandlerThread(server, make);
  if (!made.ok()) co_return BodyOutcome{false, false, HttpStatusFor(made.status().code()), made.status().message()};
  consumer = std::move(*made);
  if (!co_await SendContinue(server, stream, request, parser)) co_return lost;
  BodyConsumer* target = consumer.get();
  co_return co_await ReadBody(server, stream, buffer, parser, route.body_limit,
                              [target](const char* data, size_t size) { return target->Consume(data, size); }, true);
}

// The route's answer: its handler (or consumer's Finish), and after a wait the
// answer made once it resumed.
net::awaitable<void> MakeAnswer(HttpServer::Impl& server, const Route& route, std::unique_ptr<BodyConsumer>& consumer,
                                HttpRequest& request, HttpResponse& response) {
  if (consumer) {
    co_await RunHandler(server, [&](HttpResponse& r) { consumer->Finish(request, r); }, request, response);
    consumer.reset();
  } else {
    bool answered = false;
    if (route.from_memory) {
      co_await RunHandler(server, [&](HttpResponse& r) { answered = route.from_memory(request, r); }, request,
                          response, true);
      if (!answered) response = HttpResponse();  // not held in memory (or it threw): the handler answers
    }
    if (!answered) {
      co_await RunHandler(server, [&](HttpResponse& r) { route.handler(request, r); }, request, response,
                          route.runs_on_event_loop);
    }
  }
  if (!response.wait) co_return;
  co_await AwaitResume(response.wait);
  auto then = std::move(response.then);
  response = HttpResponse();
  co_await RunHandler(server, [&](HttpResponse& r) { then(r); }, request, response);
}

}  // namespace

net::awaitable<void> OnHandlerThread(HttpServer::Impl& server, const std::function<void()>& work) {
  co_await net::co_spawn(server.handlers.get_executor(), RunWork(&work), net::use_awaitable);
}

net::awaitable<void> ServeConnection(HttpServer::Impl& server, beast::tcp_stream stream, std::string remote,
                                     ConnectionLimits::Slot slot) {
  (void)slot;  // held for the connection's life
  ConnectionRegistration registration(server, stream);
  beast::flat_buffer buffer(server.options.max_header_bytes + kBodyChunk);
  while (!server.stopping) {
    if (!co_await AwaitNextRequest(server, stream, buffer)) break;
    http::request_parser<http::buffer_body> parser;
    if (!co_await ReadHead(server, stream, buffer, parser)) break;
    const auto& head = parser.get();
    unsigned version = head.version();
    bool keep_alive = head.keep_alive();
    HttpRequest request = FromHead(head, remote);
    HttpResponse response;
    const Route* route = Admit(server, request, response);
    if (route == nullptr) {  // refused: answered, and closed when a body is left unread
      bool written = false;
      co_await Answer(server, stream, request, response, version, keep_alive && parser.is_done(), &written);
      if (!written) break;
      if (!parser.is_done() || !keep_alive) {
        co_await LingerAndClose(stream);
        break;
      }
      continue;
    }
    std::unique_ptr<BodyConsumer> consumer;
    BodyOutcome body = co_await TakeBody(server, stream, buffer, parser, *route, request, consumer);
    if (!body.ok) {
      consumer.reset();  // undoes what it wrote
      if (body.connection_lost) break;
      ReplyError(response, body.status, body.message);
      bool written = false;
      co_await Answer(server, stream, request, response, version, false, &written);
      if (written) co_await LingerAndClose(stream);
      break;
    }
    co_await MakeAnswer(server, *route, consumer, request, response);
    if (response.events) {
      if (server.observer) server.observer(request, response.status);
      co_await StreamEvents(server, stream, response, version);
      break;
    }
    bool written = false;
    co_await Answer(server, stream, request, response, version, keep_alive, &written);
    if (!written || !keep_alive) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(Tcp::socket::shutdown_both, ignored);
  stream.socket().close(ignored);
}

}  // namespace tessera::server
