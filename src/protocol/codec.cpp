#include "protocol/codec.h"

#include "util/byte_order.h"

namespace tessera::protocol {
namespace {

std::string Num(uint64_t v) { return std::to_string(v); }

// Cuts `text` to at most `max` bytes without splitting a UTF-8 sequence.
std::string_view CutUtf8(std::string_view text, size_t max) {
  if (text.size() <= max) return text;
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

void WriteHeader(ByteWriter& w, MessageType type, uint64_t request_id) {
  w.U32(kMagic);
  w.U16(kVersion);
  w.U16(static_cast<uint16_t>(type));
  w.U64(request_id);
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t extra;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;
    for (size_t k = 1; k <= extra; ++k) {
      unsigned char cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

std::optional<Header> ReadHeader(std::span<const uint8_t> payload) {
  ByteCursor c(payload);
  Header h;
  if (!c.ReadU32(&h.magic) || !c.ReadU16(&h.version) || !c.ReadU16(&h.msg_type) || !c.ReadU64(&h.request_id)) {
    return std::nullopt;
  }
  return h;
}

bool LooksLikeRequestFrameStart(std::span<const uint8_t> bytes, uint64_t max_message_len) {
  if (bytes.size() < kFrameStartProbeSize) return false;
  uint32_t len = LoadLe32(bytes.data());
  return len >= kHeaderSize && len <= max_message_len && LoadLe32(bytes.data() + 4) == kMagic &&
         LoadLe16(bytes.data() + 8) == kVersion &&
         LoadLe16(bytes.data() + 10) == static_cast<uint16_t>(MessageType::kRequest);
}

DecodedRequest DecodeRequest(std::span<const uint8_t> payload, const RequestLimits& limits) {
  DecodedRequest out;
  std::optional<Header> header = ReadHeader(payload);
  if (!header) {
    out.status = ProtocolError("truncated header: payload has " + Num(payload.size()) + " bytes, needs " +
                               Num(kHeaderSize) + "; check the framing");
    return out;
  }
  if (header->magic != kMagic) {
    out.status = ProtocolError("bad magic; expected \"BRDR\" (0x42524452 little-endian)");
    return out;
  }
  out.request_id = header->request_id;
  if (header->version != kVersion) {
    out.status = ProtocolError("unsupported protocol version " + Num(header->version) + "; this worker speaks 2");
    return out;
  }
  if (header->msg_type != static_cast<uint16_t>(MessageType::kRequest)) {
    out.status = ProtocolError("msg_type " + Num(header->msg_type) + " is not a request (1)");
    return out;
  }

  ByteCursor c(payload.subspan(kHeaderSize));
  Request& r = out.request;
  r.request_id = header->request_id;
  uint32_t engine = 0;
  uint32_t quality_len = 0;
  uint32_t batch_count = 0;
  std::span<const uint8_t> quality;
  if (!c.ReadU32(&engine) || !c.ReadU32(&quality_len)) {
    out.status = ProtocolError("truncated request body (engine/quality_len)");
    return out;
  }
  std::optional<Engine> known = EngineFromWire(engine);
  if (!known) {
    out.status =
        InvalidError("unknown engine " + Num(engine) + "; use 1 realesrgan, 2 realcugan, 3 waifu2x or 4 lanczos");
    return out;
  }
  r.engine = *known;
  if (quality_len > kMaxQualityBytes) {
    out.status =
        InvalidError("quality string is " + Num(quality_len) + " bytes; at most " + Num(kMaxQualityBytes) + " allowed");
    return out;
  }
  if (!c.ReadBytes(quality_len, &quality)) {
    out.status = ProtocolError("truncated request body (quality bytes)");
    return out;
  }
  r.quality = std::string_view(reinterpret_cast<const char*>(quality.data()), quality.size());
  if (!IsValidUtf8(r.quality)) {
    out.status = InvalidError("quality string is not valid UTF-8");
    return out;
  }
  if (!c.ReadI32(&r.gpu_id) || !c.ReadU32(&batch_count)) {
    out.status = ProtocolError("truncated request body (gpu_id/batch_count)");
    return out;
  }
  if (r.gpu_id < -1) {
    out.status = InvalidError("gpu_id " + std::to_string(r.gpu_id) + " is invalid; use -1 for CPU or a GPU index");
    return out;
  }
  if (batch_count == 0) {
    out.status = InvalidError("batch_count is 0; send at least one image");
    return out;
  }
  if (batch_count > limits.max_batch_items) {
    out.status = LimitError("batch_count " + Num(batch_count) + " exceeds --max-batch-items " +
                            Num(limits.max_batch_items) + "; split the batch");
    return out;
  }
  // Every image needs at least its 4-byte length: a cheap early check that also
  // bounds the vector we are about to reserve by the payload actually received.
  if (static_cast<uint64_t>(batch_count) * 4 > c.remaining()) {
    out.status = InvalidError("batch_count " + Num(batch_count) + " does not match the payload: room for at most " +
                              Num(c.remaining() / 4) + " images");
    return out;
  }
  r.images.reserve(batch_count);
  for (uint32_t i = 0; i < batch_count; ++i) {
    uint32_t img_len = 0;
    if (!c.ReadU32(&img_len)) {
      out.status = InvalidError("batch_count " + Num(batch_count) + " does not match the payload: only " + Num(i) +
                                " images present");
      return out;
    }
    if (img_len > limits.max_image_bytes) {
      out.status = LimitError("image " + Num(i) + " is " + Num(img_len) + " bytes, over --max-image-bytes " +
                              Num(limits.max_image_bytes));
      return out;
    }
    if (img_len == 0) {
      out.status = BadImageError("image " + Num(i) + " is empty (img_len 0)");
      return out;
    }
    std::span<const uint8_t> bytes;
    if (!c.ReadBytes(img_len, &bytes)) {
      out.status = ProtocolError("truncated frame: image " + Num(i) + " declares " + Num(img_len) + " bytes, " +
                                 Num(c.remaining()) + " remain");
      return out;
    }
    r.images.push_back(bytes);
  }
  if (c.remaining() != 0) {
    out.status = InvalidError("batch_count " + Num(batch_count) + " does not match the payload: " + Num(c.remaining()) +
                              " bytes follow the last image");
    return out;
  }
  out.status = Status::Ok();
  return out;
}

std::vector<uint8_t> EncodeRequestFrame(const RequestFrameSpec& spec) {
  std::vector<uint8_t> frame;
  size_t payload_size = kHeaderSize + 4 + 4 + spec.quality.size() + 4 + 4;
  for (auto img : spec.images) payload_size += 4 + img.size();
  frame.reserve(kLengthPrefixSize + payload_size);
  ByteWriter w(&frame);
  w.U32(static_cast<uint32_t>(payload_size));
  WriteHeader(w, MessageType::kRequest, spec.request_id);
  w.U32(spec.engine);
  w.U32(static_cast<uint32_t>(spec.quality.size()));
  w.Bytes(spec.quality);
  w.I32(spec.gpu_id);
  w.U32(spec.declared_batch_count.value_or(static_cast<uint32_t>(spec.images.size())));
  for (auto img : spec.images) {
    w.U32(static_cast<uint32_t>(img.size()));
    w.Bytes(img);
  }
  return frame;
}

std::vector<uint8_t> EncodeResponsePrefix(uint64_t request_id, WireStatus status, std::string_view error,
                                          std::span<const size_t> output_sizes) {
  if (status != WireStatus::kOk) output_sizes = {};
  std::string_view text = CutUtf8(error, kMaxErrorBytes);
  uint64_t payload_size = kHeaderSize + 4 + 4 + text.size() + 4;
  for (size_t s : output_sizes) payload_size += 4 + s;
  std::vector<uint8_t> prefix;
  prefix.reserve(kLengthPrefixSize + kHeaderSize + 12 + text.size());
  ByteWriter w(&prefix);
  w.U32(static_cast<uint32_t>(payload_size));
  WriteHeader(w, MessageType::kResponse, request_id);
  w.U32(static_cast<uint32_t>(status));
  w.U32(static_cast<uint32_t>(text.size()));
  w.Bytes(text);
  w.U32(static_cast<uint32_t>(output_sizes.size()));
  return prefix;
}

std::array<uint8_t, 4> EncodeOutputLength(uint32_t size) {
  std::array<uint8_t, 4> b{};
  StoreLe32(b.data(), size);
  return b;
}

Result<Response> DecodeResponse(std::span<const uint8_t> payload) {
  std::optional<Header> header = ReadHeader(payload);
  if (!header) return ProtocolError("truncated response header");
  if (header->magic != kMagic) return ProtocolError("bad magic in response");
  if (header->version != kVersion) return ProtocolError("unsupported response version " + Num(header->version));
  if (header->msg_type != static_cast<uint16_t>(MessageType::kResponse)) {
    return ProtocolError("msg_type " + Num(header->msg_type) + " is not a response (2)");
  }
  ByteCursor c(payload.subspan(kHeaderSize));
  Response r;
  r.request_id = header->request_id;
  uint32_t error_len = 0;
  uint32_t result_count = 0;
  std::span<const uint8_t> error;
  if (!c.ReadU32(&r.status) || !c.ReadU32(&error_len) || !c.ReadBytes(error_len, &error) || !c.ReadU32(&result_count)) {
    return ProtocolError("truncated response body");
  }
  r.error.assign(reinterpret_cast<const char*>(error.data()), error.size());
  if (r.status != 0 && result_count != 0) {
    return ProtocolError("response breaks the contract: status " + Num(r.status) + " with " + Num(result_count) +
                         " results");
  }
  if (static_cast<uint64_t>(result_count) * 4 > c.remaining()) return ProtocolError("result_count exceeds payload");
  r.outputs.reserve(result_count);
  for (uint32_t i = 0; i < result_count; ++i) {
    uint32_t len = 0;
    std::span<const uint8_t> bytes;
    if (!c.ReadU32(&len) || !c.ReadBytes(len, &bytes)) return ProtocolError("truncated output " + Num(i));
    r.outputs.emplace_back(bytes.begin(), bytes.end());
  }
  if (c.remaining() != 0) return ProtocolError("trailing bytes after the last output");
  return r;
}

}  // namespace tessera::protocol
