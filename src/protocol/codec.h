// Pure encode/decode of protocol v2 payloads: no I/O, no policy beyond the limits
// passed in, no knowledge of engines. Safe on any input (fuzzed: fuzz/).
//
// Decoded requests hold views into the payload buffer; the buffer must outlive them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/wire_format.h"
#include "util/status.h"

namespace tessera::protocol {

struct Header {
  uint32_t magic = 0;
  uint16_t version = 0;
  uint16_t msg_type = 0;
  uint64_t request_id = 0;
};

// Reads the 16-byte header at the start of a payload; nullopt when too short.
std::optional<Header> ReadHeader(std::span<const uint8_t> payload);

// True when `bytes` (at least 12) start like a v2 request frame: a message_len in
// [kHeaderSize, max_message_len], then the magic, version 2 and msg_type 1. Used to
// find the next frame in a corrupt stream.
bool LooksLikeRequestFrameStart(std::span<const uint8_t> bytes, uint64_t max_message_len);
inline constexpr size_t kFrameStartProbeSize = kLengthPrefixSize + 8;

struct RequestLimits {
  uint32_t max_batch_items = 64;
  uint64_t max_image_bytes = 64ull << 20;
};

struct Request {
  uint64_t request_id = 0;
  Engine engine = Engine::kLanczos;
  std::string_view quality;                      // UTF-8, may be empty
  int32_t gpu_id = -1;                           // -1 = CPU
  std::vector<std::span<const uint8_t>> images;  // views into the payload
};

struct DecodedRequest {
  Status status;                       // ok, or what is wrong and what to do
  std::optional<uint64_t> request_id;  // known once the header was readable
  Request request;                     // meaningful only when status.ok()
};

// Decodes a request payload (the bytes after message_len). Errors carry the wire
// category: kProtocol (header, truncation), kInvalid (counts, engine, text), kLimit.
DecodedRequest DecodeRequest(std::span<const uint8_t> payload, const RequestLimits& limits);

// What a client sends. `engine` is raw so tests can send unknown values;
// `declared_batch_count` overrides images.size() to build inconsistent frames.
struct RequestFrameSpec {
  uint64_t request_id = 0;
  uint32_t engine = static_cast<uint32_t>(Engine::kLanczos);
  std::string quality;
  int32_t gpu_id = -1;
  std::vector<std::span<const uint8_t>> images;
  std::optional<uint32_t> declared_batch_count;
};

// The whole frame, length prefix included.
std::vector<uint8_t> EncodeRequestFrame(const RequestFrameSpec& spec);

// Everything of a response frame that comes before the first output image: length
// prefix, header, status, error text and result_count. The caller then writes, per
// output, EncodeOutputLength(size) and the bytes, so outputs are never copied into
// one buffer. Non-OK responses carry no outputs: `output_sizes` must then be empty
// (enforced: any sizes given are dropped). Error texts longer than kMaxErrorBytes
// are cut at a UTF-8 boundary.
std::vector<uint8_t> EncodeResponsePrefix(uint64_t request_id, WireStatus status, std::string_view error,
                                          std::span<const size_t> output_sizes);
std::array<uint8_t, 4> EncodeOutputLength(uint32_t size);

struct Response {
  uint64_t request_id = 0;
  uint32_t status = 0;  // raw, see WireStatus
  std::string error;
  std::vector<std::vector<uint8_t>> outputs;
};

// Decodes a response payload (for clients and tests). Checks the header, every
// length and the contract (non-zero status => no outputs).
Result<Response> DecodeResponse(std::span<const uint8_t> payload);

// True when `text` is well-formed UTF-8.
bool IsValidUtf8(std::string_view text);

}  // namespace tessera::protocol
