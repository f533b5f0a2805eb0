// Writes an answer: a string body, or file parts read as the client takes them
// (64 KiB at a time, never the whole file in memory).
#include <unistd.h>

#include "server/http_connection.h"

namespace tessera::server {
namespace {

constexpr size_t kFileChunk = 64 * 1024;

template <typename Body>
void SetCommonFields(http::response<Body>& message, const HttpResponse& response, bool keep_alive) {
  for (const auto& [name, value] : response.headers) message.insert(name, value);
  if (!response.content_type.empty()) message.set(http::field::content_type, response.content_type);
  message.keep_alive(keep_alive);
}

net::awaitable<bool> WriteFileParts(HttpServer::Impl& server, beast::tcp_stream& stream, const FileBody& file) {
  std::unique_ptr<char[]> chunk(new char[kFileChunk]);
  for (const FileBody::Segment& segment : file.segments) {
    if (!segment.from_file) {
      stream.expires_after(server.options.write_timeout);
      auto [error, n] = co_await net::async_write(stream, net::buffer(segment.text), net::as_tuple(net::use_awaitable));
      if (error) co_return false;
      continue;
    }
    uint64_t offset = segment.offset, left = segment.length;
    while (left > 0) {
      size_t wanted = static_cast<size_t>(std::min<uint64_t>(left, kFileChunk));
      ssize_t got = ::pread(*file.fd, chunk.get(), wanted, static_cast<off_t>(offset));
      if (got <= 0) co_return false;  // the file shrank under us: the length sent can no longer be met
      stream.expires_after(server.options.write_timeout);
      auto [error, n] = co_await net::async_write(stream, net::buffer(chunk.get(), static_cast<size_t>(got)),
                                                  net::as_tuple(net::use_awaitable));
      if (error) co_return false;
      offset += static_cast<uint64_t>(got);
      left -= static_cast<uint64_t>(got);
    }
  }
  co_return true;
}

}  // namespace

net::awaitable<bool> WriteResponse(HttpServer::Impl& server, beast::tcp_stream& stream, HttpResponse& response,
                                   unsigned version, bool keep_alive) {
  auto status = static_cast<http::status>(response.status);
  if (response.file) {
    http::response<http::empty_body> message{status, version};
    SetCommonFields(message, response, keep_alive);
    message.content_length(response.file->TotalBytes());
    http::response_serializer<http::empty_body> serializer{message};
    stream.expires_after(server.options.write_timeout);
    auto [error, n] = co_await http::async_write_header(stream, serializer, net::as_tuple(net::use_awaitable));
    if (error) co_return false;
    co_return co_await WriteFileParts(server, stream, *response.file);
  }
  http::response<http::string_body> message{status, version};
  SetCommonFields(message, response, keep_alive);
  message.body() = std::move(response.body);
  message.prepare_payload();
  stream.expires_after(server.options.write_timeout);
  auto [error, n] = co_await http::async_write(stream, message, net::as_tuple(net::use_awaitable));
  co_return !error;
}

}  // namespace tessera::server
