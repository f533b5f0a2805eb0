// GET /events on the event loop: a connection that follows events holds no
// thread. Two coroutines share the connection: one writes the subscriber's
// events as they are published (and a heartbeat comment when there are none),
// the other reads the socket, so a client that leaves is noticed at once. A
// client too slow to keep its queue bounded gets a final `event: dropped` and is
// disconnected.
#include <boost/asio/experimental/awaitable_operators.hpp>

#include "server/event_hub.h"
#include "server/http_connection.h"
#include "util/log.h"

namespace tessera::server {
namespace {

using namespace net::experimental::awaitable_operators;

// The kernel's send buffer of an event stream: without a cap it grows to
// megabytes for a client that stopped reading before a write ever waits; with
// it, such a client is noticed after 64 KiB (then its queue overflows, or the
// write deadline passes, and it is dropped).
constexpr int kEventSendBuffer = 64 * 1024;

std::string Frame(const HubEvent& event) {
  return "id: " + std::to_string(event.id) + "\nevent: job\ndata: " + *event.data + "\n\n";
}

// Ends when the client closes its side (true), or sends garbage beyond a small
// budget, or the socket is closed under it (a write deadline passed: false).
net::awaitable<bool> ReadUntilClosed(Tcp::socket& socket) {
  char sink[512];
  size_t budget = 64 * 1024;  // a client has nothing to send on an event stream
  while (budget > 0) {
    auto [error, n] = co_await socket.async_read_some(net::buffer(sink), net::as_tuple(net::use_awaitable));
    if (error) co_return error == net::error::eof || error == net::error::connection_reset;
    budget -= std::min(budget, n);
  }
  co_return false;
}

net::awaitable<bool> WriteChunk(HttpServer::Impl& server, beast::tcp_stream& stream, const std::string& text) {
  stream.expires_after(server.options.write_timeout);
  auto [error, n] =
      co_await net::async_write(stream, http::make_chunk(net::buffer(text)), net::as_tuple(net::use_awaitable));
  co_return !error;
}

// How a stream ended, for the log: "finished", "closed", "too_slow" (queue
// overflow), "write_failed" (the client left, or a write missed its deadline).
net::awaitable<void> WriteEvents(HttpServer::Impl& server, beast::tcp_stream& stream, EventSubscriber& subscriber,
                                 net::steady_timer& wake, std::string first, bool finished, std::string* ended) {
  *ended = "write_failed";
  bool follows_one_job = !subscriber.job_filter().empty();
  if (!first.empty() && !co_await WriteChunk(server, stream, first)) co_return;
  while (!finished) {
    bool overflowed = false;
    std::vector<HubEvent> events = subscriber.TakeAll(&overflowed);
    std::string text;
    for (const HubEvent& event : events) {
      text += Frame(event);
      if (follows_one_job && event.final) {
        finished = true;
        break;
      }
    }
    if (overflowed) {
      *ended = "too_slow";
      text += "event: dropped\ndata: {\"reason\":\"the client read too slowly; reconnect with Last-Event-ID\"}\n\n";
      finished = true;
    }
    if (!text.empty() && !co_await WriteChunk(server, stream, text)) co_return;
    if (finished || subscriber.closed() || server.stopping) {
      if (*ended != "too_slow") *ended = finished ? "finished" : "closed";
      break;
    }
    if (!events.empty()) continue;
    wake.expires_after(server.options.event_heartbeat);
    auto [error] = co_await wake.async_wait(net::as_tuple(net::use_awaitable));
    if (!error && !co_await WriteChunk(server, stream, ": keep-alive\n\n")) co_return;
  }
  stream.expires_after(server.options.write_timeout);
  co_await net::async_write(stream, http::make_chunk_last(), net::as_tuple(net::use_awaitable));
}

}  // namespace

net::awaitable<void> StreamEvents(HttpServer::Impl& server, beast::tcp_stream& stream, HttpResponse& response,
                                  unsigned version) {
  std::shared_ptr<EventSubscriber> subscriber = response.events;
  http::response<http::empty_body> message{static_cast<http::status>(response.status), version};
  for (const auto& [name, value] : response.headers) message.insert(name, value);
  message.set(http::field::content_type, "text/event-stream");
  message.set(http::field::cache_control, "no-cache");
  message.keep_alive(false);
  message.chunked(true);
  http::response_serializer<http::empty_body> serializer{message};
  beast::error_code ignored;
  stream.socket().set_option(net::socket_base::send_buffer_size(kEventSendBuffer), ignored);
  stream.expires_after(server.options.write_timeout);
  auto [error, n] = co_await http::async_write_header(stream, serializer, net::as_tuple(net::use_awaitable));
  if (error) co_return;

  auto executor = co_await net::this_coro::executor;
  auto wake = std::make_shared<net::steady_timer>(executor);
  std::weak_ptr<net::steady_timer> weak = wake;
  subscriber->SetWake([weak, executor] {
    net::post(executor, [weak] {
      if (auto timer = weak.lock()) timer->cancel();
    });
  });
  std::string ended = "client_left";
  try {
    auto first = co_await (WriteEvents(server, stream, *subscriber, *wake, std::move(response.body),
                                       response.events_end_after_body, &ended) ||
                           ReadUntilClosed(stream.socket()));
    if (first.index() == 1 && std::get<1>(first)) ended = "client_left";
  } catch (const std::exception&) {
    // Cancelled by the other side of ||: the client left, or the stream ended.
  }
  subscriber->SetWake(nullptr);
  if (ended == "too_slow" || ended == "write_failed") LogInfo("event_stream_dropped").Field("reason", ended);
}

}  // namespace tessera::server
