// libFuzzer target: arbitrary bytes through the frame reader, then every frame
// through the request decoder and the swallowed-frame recovery. Any crash, leak,
// overflow or undefined behaviour is a bug.
#include <algorithm>
#include <cstring>

#include "protocol/codec.h"
#include "protocol/frame_reader.h"

namespace {

class FuzzSource : public tessera::ByteSource {
 public:
  FuzzSource(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  tessera::Result<size_t> Read(uint8_t* dst, size_t n) override {
    // Deliver in uneven pieces, as a pipe would.
    size_t take = std::min({n, size_ - pos_, static_cast<size_t>(1 + (pos_ * 7) % 61)});
    if (take > 0) std::memcpy(dst, data_ + pos_, take);
    pos_ += take;
    return take;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera::protocol;
  // The whole input as one payload.
  DecodedRequest direct = DecodeRequest({data, size}, {8, 1 << 16});
  if (direct.status.ok() && direct.request.images.empty()) __builtin_trap();  // contract: batch_count >= 1

  // And as a stream of frames.
  FuzzSource source(data, size);
  FrameReader reader(source, {1 << 16});
  for (int i = 0; i < 64; ++i) {
    FrameEvent e = reader.Next();
    if (e.kind == FrameEventKind::kEndOfStream || e.kind == FrameEventKind::kTruncated ||
        e.kind == FrameEventKind::kReadError) {
      break;
    }
    if (e.kind != FrameEventKind::kFrame) continue;
    if (e.payload.size() > (1u << 16)) __builtin_trap();  // never more than the limit
    DecodedRequest d = DecodeRequest(e.payload, {8, 1 << 16});
    if (!d.status.ok()) reader.RecoverSwallowedFrame(std::move(e.payload));
  }
  (void)DecodeResponse({data, size});
  return 0;
}
