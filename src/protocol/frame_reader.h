// Splits a byte stream into protocol v2 frames, under a message size limit, and
// recovers from what a real pipe can deliver: oversized frames, garbage, frames
// cut short, end of stream in the middle of a frame.
//
// The reader never allocates more than the limit for one frame and never allocates
// an oversized frame at all: it reports it, then drains it in small chunks on the
// next call. After corrupt bytes it reports once, then scans for the next byte
// sequence that looks like a request frame start (see LooksLikeRequestFrameStart).
// Reporting happens before draining or scanning so the caller can answer at once.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "protocol/codec.h"
#include "util/byte_source.h"
#include "util/status.h"

namespace tessera::protocol {

enum class FrameEventKind {
  kFrame,        // payload holds one whole frame (header not yet validated beyond magic)
  kEndOfStream,  // clean end: no byte of a new frame was read
  kOversized,    // message_len over the limit; header says whom to answer; drained next
  kCorrupt,      // bytes that cannot start a frame; the reader resynchronises next
  kTruncated,    // end of stream inside a frame; header set when it was complete
  kReadError,    // the source failed; error says how
};

struct FrameEvent {
  FrameEventKind kind = FrameEventKind::kEndOfStream;
  std::vector<uint8_t> payload;  // kFrame only
  std::optional<Header> header;  // kOversized, kTruncated (when readable), kFrame
  uint64_t declared_length = 0;  // message_len as read (kFrame, kOversized, kTruncated)
  uint64_t skipped_bytes = 0;    // bytes discarded (drain or resync) before this event
  Status error;                  // kReadError
};

struct FrameLimits {
  uint64_t max_message_bytes = 256ull << 20;
};

class FrameReader {
 public:
  FrameReader(ByteSource& source, FrameLimits limits);

  FrameEvent Next();

  // Call with the payload of a kFrame that failed to decode structurally. When a
  // short message_len made that frame swallow the start of the next one, the
  // swallowed bytes are put back to be read again and this returns true.
  bool RecoverSwallowedFrame(std::vector<uint8_t> payload);

 private:
  // Makes at least `n` unread bytes available; false when the stream ends first
  // (what did arrive stays buffered). A read error is kept in read_error_.
  bool Fill(size_t n);
  size_t Buffered() const { return buffer_.size() - begin_; }
  const uint8_t* Data() const { return buffer_.data() + begin_; }
  void Consume(size_t n) { begin_ += n; }
  FrameEvent ReadPayload(uint32_t length, const Header& header, uint64_t skipped);
  FrameEvent EndEvent(FrameEventKind kind, uint64_t skipped);
  // Discards pending_drain_ bytes; returns false at end of stream.
  bool Drain(uint64_t* skipped);
  // Skips bytes until a frame start is buffered; returns false at end of stream.
  bool Resync(uint64_t* skipped);

  ByteSource& source_;
  FrameLimits limits_;
  std::vector<uint8_t> buffer_;
  size_t begin_ = 0;
  uint64_t pending_drain_ = 0;
  bool resync_pending_ = false;
  Status read_error_;
};

}  // namespace tessera::protocol
