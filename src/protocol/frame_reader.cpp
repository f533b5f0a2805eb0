#include "protocol/frame_reader.h"

#include <algorithm>
#include <cstring>

#include "util/byte_order.h"

namespace tessera::protocol {
namespace {

constexpr size_t kReadChunk = 64 * 1024;
// Payloads grow as bytes arrive, so a frame that declares a large size but sends
// little costs little memory.
constexpr size_t kPayloadGrowStep = 1 << 20;

}  // namespace

FrameReader::FrameReader(ByteSource& source, FrameLimits limits) : source_(source), limits_(limits) {}

bool FrameReader::Fill(size_t n) {
  while (Buffered() < n) {
    if (!read_error_.ok()) return false;
    if (begin_ > 0 && (begin_ >= buffer_.size() / 2 || buffer_.size() + kReadChunk > buffer_.capacity())) {
      buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(begin_));
      begin_ = 0;
    }
    size_t old = buffer_.size();
    size_t want = std::max(kReadChunk, n - Buffered());
    buffer_.resize(old + want);
    Result<size_t> got = source_.Read(buffer_.data() + old, want);
    buffer_.resize(old + (got.ok() ? *got : 0));
    if (!got.ok()) {
      read_error_ = got.status();
      return false;
    }
    if (*got == 0) return false;
  }
  return true;
}

FrameEvent FrameReader::EndEvent(FrameEventKind kind, uint64_t skipped) {
  FrameEvent e;
  e.kind = read_error_.ok() ? kind : FrameEventKind::kReadError;
  e.error = read_error_;
  e.skipped_bytes = skipped;
  return e;
}

bool FrameReader::Drain(uint64_t* skipped) {
  while (pending_drain_ > 0) {
    if (Buffered() == 0 && !Fill(1)) return false;
    size_t take = static_cast<size_t>(std::min<uint64_t>(pending_drain_, Buffered()));
    Consume(take);
    pending_drain_ -= take;
    *skipped += take;
  }
  return true;
}

bool FrameReader::Resync(uint64_t* skipped) {
  for (;;) {
    if (!Fill(kFrameStartProbeSize)) {
      // What is left can never hold a frame start; count it as skipped.
      *skipped += Buffered();
      Consume(Buffered());
      return false;
    }
    if (LooksLikeRequestFrameStart({Data(), Buffered()}, limits_.max_message_bytes)) {
      resync_pending_ = false;
      return true;
    }
    Consume(1);
    ++*skipped;
  }
}

FrameEvent FrameReader::Next() {
  uint64_t skipped = 0;
  if (pending_drain_ > 0 && !Drain(&skipped)) return EndEvent(FrameEventKind::kEndOfStream, skipped);
  if (resync_pending_ && !Resync(&skipped)) return EndEvent(FrameEventKind::kEndOfStream, skipped);

  if (!Fill(kLengthPrefixSize)) {
    return EndEvent(Buffered() == 0 ? FrameEventKind::kEndOfStream : FrameEventKind::kTruncated, skipped);
  }
  uint32_t length = LoadLe32(Data());
  if (length < kHeaderSize) {
    Consume(1);
    resync_pending_ = true;
    FrameEvent e = EndEvent(FrameEventKind::kCorrupt, skipped);
    e.declared_length = length;
    return e;
  }
  if (!Fill(kLengthPrefixSize + kHeaderSize)) {
    FrameEvent e = EndEvent(FrameEventKind::kTruncated, skipped);
    e.declared_length = length;
    return e;
  }
  std::optional<Header> header = ReadHeader({Data() + kLengthPrefixSize, kHeaderSize});
  if (header->magic != kMagic) {
    // Neither the length nor anything after it can be trusted.
    Consume(1);
    resync_pending_ = true;
    FrameEvent e = EndEvent(FrameEventKind::kCorrupt, skipped);
    e.declared_length = length;
    return e;
  }
  if (length > limits_.max_message_bytes) {
    Consume(kLengthPrefixSize + kHeaderSize);
    pending_drain_ = length - kHeaderSize;
    FrameEvent e = EndEvent(FrameEventKind::kOversized, skipped);
    e.kind = FrameEventKind::kOversized;
    e.header = header;
    e.declared_length = length;
    return e;
  }
  Consume(kLengthPrefixSize);
  return ReadPayload(length, *header, skipped);
}

FrameEvent FrameReader::ReadPayload(uint32_t length, const Header& header, uint64_t skipped) {
  FrameEvent e;
  e.header = header;
  e.declared_length = length;
  e.skipped_bytes = skipped;
  std::vector<uint8_t>& payload = e.payload;
  size_t have = std::min<size_t>(Buffered(), length);
  payload.assign(Data(), Data() + have);
  Consume(have);
  while (have < length) {
    size_t target = std::min<size_t>(length, std::max(have * 2, have + kPayloadGrowStep));
    payload.resize(target);
    while (have < target) {
      Result<size_t> got = source_.Read(payload.data() + have, target - have);
      if (!got.ok() || *got == 0) {
        read_error_ = got.ok() ? Status::Ok() : got.status();
        FrameEvent cut = EndEvent(FrameEventKind::kTruncated, skipped);
        cut.header = header;
        cut.declared_length = length;
        return cut;
      }
      have += *got;
    }
  }
  e.kind = FrameEventKind::kFrame;
  return e;
}

bool FrameReader::RecoverSwallowedFrame(std::vector<uint8_t> payload) {
  // Offset 0 holds this frame's own magic, which is never a plausible length.
  for (size_t p = 1; p + kFrameStartProbeSize <= payload.size(); ++p) {
    if (LooksLikeRequestFrameStart({payload.data() + p, payload.size() - p}, limits_.max_message_bytes)) {
      std::vector<uint8_t> rest(payload.begin() + static_cast<std::ptrdiff_t>(p), payload.end());
      rest.insert(rest.end(), Data(), Data() + Buffered());
      buffer_ = std::move(rest);
      begin_ = 0;
      return true;
    }
  }
  return false;
}

}  // namespace tessera::protocol
