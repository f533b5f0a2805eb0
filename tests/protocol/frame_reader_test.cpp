#include "protocol/frame_reader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "util/byte_order.h"
#include "util/process_memory.h"

namespace tessera::protocol {
namespace {

// Serves fixed bytes, at most `chunk` per read, like a pipe delivering pieces.
class MemorySource : public ByteSource {
 public:
  explicit MemorySource(std::vector<uint8_t> bytes, size_t chunk = 7) : bytes_(std::move(bytes)), chunk_(chunk) {}
  Result<size_t> Read(uint8_t* dst, size_t size) override {
    size_t n = std::min({size, chunk_, bytes_.size() - pos_});
    if (n > 0) std::memcpy(dst, bytes_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  std::vector<uint8_t> bytes_;
  size_t chunk_;
  size_t pos_ = 0;
};

// A frame header that declares `declared` payload bytes, then `filler` bytes
// produced on the fly (never held in memory), then `tail`.
class HugeFrameSource : public ByteSource {
 public:
  HugeFrameSource(uint32_t declared, uint64_t filler, std::vector<uint8_t> tail)
      : filler_(filler), tail_(std::move(tail)) {
    head_.resize(4 + kHeaderSize);
    StoreLe32(head_.data(), declared);
    StoreLe32(head_.data() + 4, kMagic);
    StoreLe16(head_.data() + 8, kVersion);
    StoreLe16(head_.data() + 10, 1);
    StoreLe64(head_.data() + 12, 77);
  }
  Result<size_t> Read(uint8_t* dst, size_t size) override {
    if (pos_ < head_.size()) {
      size_t n = std::min(size, head_.size() - pos_);
      std::memcpy(dst, head_.data() + pos_, n);
      pos_ += n;
      return n;
    }
    uint64_t in_filler = pos_ - head_.size();
    if (in_filler < filler_) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(size, filler_ - in_filler));
      std::memset(dst, 0xAB, n);
      pos_ += n;
      return n;
    }
    size_t in_tail = static_cast<size_t>(in_filler - filler_);
    size_t n = std::min(size, tail_.size() - in_tail);
    std::memcpy(dst, tail_.data() + in_tail, n);
    pos_ += n;
    return n;
  }

 private:
  std::vector<uint8_t> head_;
  uint64_t filler_;
  std::vector<uint8_t> tail_;
  uint64_t pos_ = 0;
};

std::vector<uint8_t> Frame(uint64_t id, std::string_view image = "img") {
  static std::vector<std::vector<uint8_t>> keep;
  keep.emplace_back(image.begin(), image.end());
  RequestFrameSpec spec;
  spec.request_id = id;
  spec.quality = "x2";
  spec.images = {keep.back()};
  return EncodeRequestFrame(spec);
}

std::vector<uint8_t> Concat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

uint64_t IdOf(const FrameEvent& e) { return ReadHeader(e.payload)->request_id; }

TEST(FrameReaderTest, SplitsFramesDeliveredInSmallPieces) {
  MemorySource source(Concat({Frame(1), Frame(2), Frame(3)}), 3);
  FrameReader reader(source, {});
  for (uint64_t id = 1; id <= 3; ++id) {
    FrameEvent e = reader.Next();
    ASSERT_EQ(e.kind, FrameEventKind::kFrame);
    EXPECT_EQ(IdOf(e), id);
    EXPECT_TRUE(DecodeRequest(e.payload, {}).status.ok());
  }
  EXPECT_EQ(reader.Next().kind, FrameEventKind::kEndOfStream);
}

TEST(FrameReaderTest, EmptyStreamIsACleanEnd) {
  MemorySource source({});
  FrameReader reader(source, {});
  EXPECT_EQ(reader.Next().kind, FrameEventKind::kEndOfStream);
}

TEST(FrameReaderTest, EndInsideAFrameIsTruncatedWithTheHeader) {
  std::vector<uint8_t> frame = Frame(9);
  frame.resize(frame.size() - 2);
  MemorySource source(frame);
  FrameReader reader(source, {});
  FrameEvent e = reader.Next();
  EXPECT_EQ(e.kind, FrameEventKind::kTruncated);
  ASSERT_TRUE(e.header.has_value());
  EXPECT_EQ(e.header->request_id, 9u);
}

TEST(FrameReaderTest, EndInsideTheLengthPrefixIsTruncated) {
  MemorySource source({1, 2});
  FrameReader reader(source, {});
  EXPECT_EQ(reader.Next().kind, FrameEventKind::kTruncated);
}

TEST(FrameReaderTest, OversizedFrameIsReportedThenDrainedWithoutBeingHeld) {
  constexpr uint32_t kDeclared = 200u << 20;  // 200 MiB, far over the limit below
  HugeFrameSource source(kDeclared, kDeclared - kHeaderSize, Frame(2));
  FrameReader reader(source, {1 << 20});
  ResetPeakRss();
  const uint64_t rss_before = CurrentRssBytes();
  FrameEvent e = reader.Next();
  ASSERT_EQ(e.kind, FrameEventKind::kOversized);
  EXPECT_EQ(e.declared_length, kDeclared);
  ASSERT_TRUE(e.header.has_value());
  EXPECT_EQ(e.header->request_id, 77u);
  FrameEvent next = reader.Next();
  ASSERT_EQ(next.kind, FrameEventKind::kFrame);
  EXPECT_EQ(IdOf(next), 2u);
  EXPECT_EQ(next.skipped_bytes, kDeclared - kHeaderSize);
  // Draining 200 MiB must not have made the process grow by anything like it.
  EXPECT_LT(PeakRssBytes(), rss_before + (32u << 20));
}

TEST(FrameReaderTest, GarbageIsReportedOnceThenTheNextFrameIsFound) {
  std::vector<uint8_t> garbage = {0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                  0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11};
  MemorySource source(Concat({garbage, Frame(5)}));
  FrameReader reader(source, {1 << 20});
  EXPECT_EQ(reader.Next().kind, FrameEventKind::kCorrupt);
  FrameEvent e = reader.Next();
  ASSERT_EQ(e.kind, FrameEventKind::kFrame);
  EXPECT_EQ(IdOf(e), 5u);
  EXPECT_EQ(e.skipped_bytes + 1, garbage.size());  // one byte went with the kCorrupt report
}

TEST(FrameReaderTest, BadMagicWithPlausibleLengthResynchronises) {
  std::vector<uint8_t> bad = Frame(6);
  bad[4] = 'X';
  MemorySource source(Concat({bad, Frame(7)}));
  FrameReader reader(source, {1 << 20});
  EXPECT_EQ(reader.Next().kind, FrameEventKind::kCorrupt);
  FrameEvent e = reader.Next();
  ASSERT_EQ(e.kind, FrameEventKind::kFrame);
  EXPECT_EQ(IdOf(e), 7u);
}

TEST(FrameReaderTest, LengthTooSmallForAHeaderIsCorrupt) {
  std::vector<uint8_t> tiny = {3, 0, 0, 0, 1, 2, 3};
  MemorySource source(Concat({tiny, Frame(8)}));
  FrameReader reader(source, {1 << 20});
  EXPECT_EQ(reader.Next().kind, FrameEventKind::kCorrupt);
  FrameEvent e = reader.Next();
  ASSERT_EQ(e.kind, FrameEventKind::kFrame);
  EXPECT_EQ(IdOf(e), 8u);
}

TEST(FrameReaderTest, GarbageUntilTheEndIsAnEndOfStream) {
  MemorySource source(std::vector<uint8_t>(100, 0xEE));
  FrameReader reader(source, {1 << 20});
  EXPECT_EQ(reader.Next().kind, FrameEventKind::kCorrupt);
  FrameEvent e = reader.Next();
  EXPECT_EQ(e.kind, FrameEventKind::kEndOfStream);
  EXPECT_EQ(e.skipped_bytes, 99u);
}

TEST(FrameReaderTest, SwallowedFrameIsRecoveredFromAMalformedOne) {
  // A frame whose message_len claims 40 bytes more than it has: it swallows the
  // start of the next frame.
  std::vector<uint8_t> first = Frame(10, "aaaa");
  StoreLe32(first.data(), LoadLe32(first.data()) + 40);
  std::vector<uint8_t> second = Frame(11, std::string(100, 'b'));
  MemorySource source(Concat({first, second}));
  FrameReader reader(source, {1 << 20});
  FrameEvent e = reader.Next();
  ASSERT_EQ(e.kind, FrameEventKind::kFrame);
  DecodedRequest d = DecodeRequest(e.payload, {});
  EXPECT_EQ(d.status.code(), StatusCode::kInvalid);  // bytes trail the last image
  EXPECT_TRUE(reader.RecoverSwallowedFrame(std::move(e.payload)));
  FrameEvent next = reader.Next();
  ASSERT_EQ(next.kind, FrameEventKind::kFrame);
  EXPECT_EQ(IdOf(next), 11u);
  EXPECT_TRUE(DecodeRequest(next.payload, {}).status.ok());
  EXPECT_EQ(reader.Next().kind, FrameEventKind::kEndOfStream);
}

TEST(FrameReaderTest, NothingToRecoverInAnOrdinaryBadFrame) {
  std::vector<uint8_t> frame = Frame(12);
  std::vector<uint8_t> payload(frame.begin() + 4, frame.end());
  MemorySource source({});
  FrameReader reader(source, {1 << 20});
  EXPECT_FALSE(reader.RecoverSwallowedFrame(payload));
}

class FailingSource : public ByteSource {
 public:
  Result<size_t> Read(uint8_t*, size_t) override { return IoError("read failed: broken"); }
};

TEST(FrameReaderTest, ReadErrorsAreReported) {
  FailingSource source;
  FrameReader reader(source, {});
  FrameEvent e = reader.Next();
  EXPECT_EQ(e.kind, FrameEventKind::kReadError);
  EXPECT_EQ(e.error.code(), StatusCode::kIo);
}

}  // namespace
}  // namespace tessera::protocol
