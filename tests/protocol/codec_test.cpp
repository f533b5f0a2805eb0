#include "protocol/codec.h"

#include <gtest/gtest.h>

#include "util/byte_order.h"

namespace tessera::protocol {
namespace {

std::vector<uint8_t> Bytes(std::string_view s) { return {s.begin(), s.end()}; }

// The payload of a frame (without its length prefix).
std::vector<uint8_t> PayloadOf(const std::vector<uint8_t>& frame) {
  EXPECT_EQ(LoadLe32(frame.data()), frame.size() - 4);
  return {frame.begin() + 4, frame.end()};
}

RequestFrameSpec TwoImageSpec() {
  static const std::vector<uint8_t> a = Bytes("first image");
  static const std::vector<uint8_t> b = Bytes("2nd");
  RequestFrameSpec spec;
  spec.request_id = 0x1122334455667788ull;
  spec.engine = 4;
  spec.quality = "x2";
  spec.gpu_id = -1;
  spec.images = {a, b};
  return spec;
}

TEST(CodecTest, RequestRoundTripsWithViewsIntoThePayload) {
  std::vector<uint8_t> payload = PayloadOf(EncodeRequestFrame(TwoImageSpec()));
  DecodedRequest d = DecodeRequest(payload, {});
  ASSERT_TRUE(d.status.ok()) << d.status.ToString();
  EXPECT_EQ(d.request_id, 0x1122334455667788ull);
  EXPECT_EQ(d.request.engine, Engine::kLanczos);
  EXPECT_EQ(d.request.quality, "x2");
  EXPECT_EQ(d.request.gpu_id, -1);
  ASSERT_EQ(d.request.images.size(), 2u);
  EXPECT_EQ(std::string(d.request.images[0].begin(), d.request.images[0].end()), "first image");
  EXPECT_EQ(std::string(d.request.images[1].begin(), d.request.images[1].end()), "2nd");
  EXPECT_GE(d.request.images[0].data(), payload.data());
  EXPECT_LT(d.request.images[0].data(), payload.data() + payload.size());
}

TEST(CodecTest, ShortPayloadIsATruncatedHeader) {
  std::vector<uint8_t> payload(10, 0);
  DecodedRequest d = DecodeRequest(payload, {});
  EXPECT_EQ(d.status.code(), StatusCode::kProtocol);
  EXPECT_FALSE(d.request_id.has_value());
}

TEST(CodecTest, BadMagicIsProtocolWithoutRequestId) {
  std::vector<uint8_t> payload = PayloadOf(EncodeRequestFrame(TwoImageSpec()));
  payload[0] ^= 0xFF;
  DecodedRequest d = DecodeRequest(payload, {});
  EXPECT_EQ(d.status.code(), StatusCode::kProtocol);
  EXPECT_NE(d.status.message().find("magic"), std::string::npos);
  EXPECT_FALSE(d.request_id.has_value());
}

TEST(CodecTest, WrongVersionOrTypeIsProtocolButKeepsTheRequestId) {
  std::vector<uint8_t> payload = PayloadOf(EncodeRequestFrame(TwoImageSpec()));
  StoreLe16(payload.data() + 4, 1);
  DecodedRequest d = DecodeRequest(payload, {});
  EXPECT_EQ(d.status.code(), StatusCode::kProtocol);
  EXPECT_NE(d.status.message().find("version 1"), std::string::npos);
  EXPECT_EQ(d.request_id, 0x1122334455667788ull);

  payload = PayloadOf(EncodeRequestFrame(TwoImageSpec()));
  StoreLe16(payload.data() + 6, 2);
  d = DecodeRequest(payload, {});
  EXPECT_EQ(d.status.code(), StatusCode::kProtocol);
  EXPECT_NE(d.status.message().find("not a request"), std::string::npos);
}

TEST(CodecTest, UnknownEngineIsInvalid) {
  RequestFrameSpec spec = TwoImageSpec();
  spec.engine = 9;
  DecodedRequest d = DecodeRequest(PayloadOf(EncodeRequestFrame(spec)), {});
  EXPECT_EQ(d.status.code(), StatusCode::kInvalid);
  EXPECT_NE(d.status.message().find("unknown engine 9"), std::string::npos);
}

TEST(CodecTest, QualityMustBeShortUtf8) {
  RequestFrameSpec spec = TwoImageSpec();
  spec.quality = std::string(300, 'a');
  EXPECT_EQ(DecodeRequest(PayloadOf(EncodeRequestFrame(spec)), {}).status.code(), StatusCode::kInvalid);
  spec.quality = "x\xC3";  // a lead byte without its continuation
  EXPECT_EQ(DecodeRequest(PayloadOf(EncodeRequestFrame(spec)), {}).status.code(), StatusCode::kInvalid);
  spec.quality = "realesr-animevideov3-x2 \xC3\xA9";  // é is fine
  EXPECT_TRUE(DecodeRequest(PayloadOf(EncodeRequestFrame(spec)), {}).status.ok());
}

TEST(CodecTest, GpuIdBelowMinusOneIsInvalid) {
  RequestFrameSpec spec = TwoImageSpec();
  spec.gpu_id = -2;
  EXPECT_EQ(DecodeRequest(PayloadOf(EncodeRequestFrame(spec)), {}).status.code(), StatusCode::kInvalid);
}

TEST(CodecTest, BatchOverTheLimitIsLimit) {
  RequestLimits limits;
  limits.max_batch_items = 1;
  DecodedRequest d = DecodeRequest(PayloadOf(EncodeRequestFrame(TwoImageSpec())), limits);
  EXPECT_EQ(d.status.code(), StatusCode::kLimit);
  EXPECT_NE(d.status.message().find("--max-batch-items 1"), std::string::npos);
  EXPECT_EQ(d.request_id, 0x1122334455667788ull);
}

TEST(CodecTest, ImageOverTheByteLimitIsLimitNamingTheIndex) {
  RequestLimits limits;
  limits.max_image_bytes = 5;
  DecodedRequest d = DecodeRequest(PayloadOf(EncodeRequestFrame(TwoImageSpec())), limits);
  EXPECT_EQ(d.status.code(), StatusCode::kLimit);
  EXPECT_NE(d.status.message().find("image 0"), std::string::npos);
}

TEST(CodecTest, ZeroImagesIsInvalid) {
  RequestFrameSpec spec = TwoImageSpec();
  spec.images.clear();
  EXPECT_EQ(DecodeRequest(PayloadOf(EncodeRequestFrame(spec)), {}).status.code(), StatusCode::kInvalid);
}

TEST(CodecTest, CountMismatchIsInvalid) {
  RequestFrameSpec spec = TwoImageSpec();
  spec.declared_batch_count = 3;  // only two images follow
  DecodedRequest d = DecodeRequest(PayloadOf(EncodeRequestFrame(spec)), {});
  EXPECT_EQ(d.status.code(), StatusCode::kInvalid);
  EXPECT_NE(d.status.message().find("does not match"), std::string::npos);

  spec.declared_batch_count = 1;  // a second image trails
  d = DecodeRequest(PayloadOf(EncodeRequestFrame(spec)), {});
  EXPECT_EQ(d.status.code(), StatusCode::kInvalid);
  EXPECT_NE(d.status.message().find("bytes follow"), std::string::npos);

  spec.declared_batch_count = 50;  // more length fields than there are bytes for
  d = DecodeRequest(PayloadOf(EncodeRequestFrame(spec)), {});
  EXPECT_EQ(d.status.code(), StatusCode::kInvalid);
}

TEST(CodecTest, ImageRunningPastThePayloadIsTruncated) {
  std::vector<uint8_t> payload = PayloadOf(EncodeRequestFrame(TwoImageSpec()));
  payload.pop_back();
  DecodedRequest d = DecodeRequest(payload, {});
  EXPECT_EQ(d.status.code(), StatusCode::kProtocol);
  EXPECT_NE(d.status.message().find("image 1"), std::string::npos);
}

TEST(CodecTest, EveryPrefixOfAValidPayloadIsRejectedCleanly) {
  std::vector<uint8_t> payload = PayloadOf(EncodeRequestFrame(TwoImageSpec()));
  for (size_t n = 0; n < payload.size(); ++n) {
    std::vector<uint8_t> prefix(payload.begin(), payload.begin() + static_cast<std::ptrdiff_t>(n));
    DecodedRequest d = DecodeRequest(prefix, {});
    EXPECT_FALSE(d.status.ok()) << "prefix of " << n << " bytes";
  }
}

TEST(CodecTest, ResponseRoundTripsAndKeepsOrder) {
  std::vector<std::vector<uint8_t>> outputs = {Bytes("one"), Bytes(""), Bytes("three")};
  std::vector<size_t> sizes = {3, 0, 5};
  std::vector<uint8_t> frame = EncodeResponsePrefix(42, WireStatus::kOk, "", sizes);
  for (const auto& o : outputs) {
    auto len = EncodeOutputLength(static_cast<uint32_t>(o.size()));
    frame.insert(frame.end(), len.begin(), len.end());
    frame.insert(frame.end(), o.begin(), o.end());
  }
  Result<Response> r = DecodeResponse(PayloadOf(frame));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->request_id, 42u);
  EXPECT_EQ(r->status, 0u);
  EXPECT_EQ(r->outputs, outputs);
}

TEST(CodecTest, ErrorResponsesNeverCarryOutputs) {
  std::vector<size_t> sizes = {10, 20};
  std::vector<uint8_t> frame = EncodeResponsePrefix(5, WireStatus::kBadImage, "image 1: cannot decode", sizes);
  Result<Response> r = DecodeResponse(PayloadOf(frame));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, static_cast<uint32_t>(WireStatus::kBadImage));
  EXPECT_EQ(r->error, "image 1: cannot decode");
  EXPECT_TRUE(r->outputs.empty());
}

TEST(CodecTest, LongErrorsAreCutOnACharacterBoundary) {
  std::string text;
  while (text.size() < kMaxErrorBytes + 10) text += "\xC3\xA9";  // é, two bytes each
  text = "x" + text;                                             // shift so the limit falls inside a character
  Result<Response> r = DecodeResponse(PayloadOf(EncodeResponsePrefix(1, WireStatus::kInternal, text, {})));
  ASSERT_TRUE(r.ok());
  EXPECT_LE(r->error.size(), kMaxErrorBytes);
  EXPECT_TRUE(IsValidUtf8(r->error));
}

TEST(CodecTest, ResponseDecoderEnforcesTheContract) {
  std::vector<uint8_t> frame = EncodeResponsePrefix(1, WireStatus::kOk, "", std::vector<size_t>{2});
  // Turn it into "status 3 with one output" by hand.
  StoreLe32(frame.data() + 4 + kHeaderSize, 3);
  frame.insert(frame.end(), {2, 0, 0, 0, 'h', 'i'});
  EXPECT_FALSE(DecodeResponse(PayloadOf(frame)).ok());
}

TEST(CodecTest, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\xE2\x82\xAC"));      // €
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x98\x80"));  // emoji
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));         // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));     // surrogate
  EXPECT_FALSE(IsValidUtf8("\xE2\x82"));         // cut short
  EXPECT_FALSE(IsValidUtf8("\xFF"));
}

TEST(CodecTest, FrameStartDetection) {
  std::vector<uint8_t> frame = EncodeRequestFrame(TwoImageSpec());
  EXPECT_TRUE(LooksLikeRequestFrameStart(frame, 1 << 20));
  EXPECT_FALSE(LooksLikeRequestFrameStart(frame, 8));  // length over the limit
  EXPECT_FALSE(LooksLikeRequestFrameStart({frame.data() + 1, frame.size() - 1}, 1 << 20));
  EXPECT_FALSE(LooksLikeRequestFrameStart({frame.data(), 11}, 1 << 20));
}

}  // namespace
}  // namespace tessera::protocol
