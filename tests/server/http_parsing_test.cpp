// The HTTP front's pure parts: Range headers, multipart bodies fed in pieces of
// every size, query parameters, routing.
#include <gtest/gtest.h>

#include "server/byte_ranges.h"
#include "server/http_router.h"
#include "server/http_status_map.h"
#include "server/multipart_parser.h"
#include "server/query_params.h"

namespace tessera::server {
namespace {

TEST(ByteRangesTest, SingleSuffixOpenAndClippedRanges) {
  auto one = ParseRangeHeader("bytes=0-99", 1000);
  ASSERT_EQ(one.outcome, RangeOutcome::kSatisfiable);
  EXPECT_EQ(one.ranges[0].first, 0u);
  EXPECT_EQ(one.ranges[0].length, 100u);
  auto suffix = ParseRangeHeader("bytes=-10", 1000);
  ASSERT_EQ(suffix.outcome, RangeOutcome::kSatisfiable);
  EXPECT_EQ(suffix.ranges[0].first, 990u);
  EXPECT_EQ(suffix.ranges[0].length, 10u);
  auto longer = ParseRangeHeader("bytes=-5000", 1000);  // a suffix longer than the file: all of it
  EXPECT_EQ(longer.ranges[0].first, 0u);
  EXPECT_EQ(longer.ranges[0].length, 1000u);
  auto open = ParseRangeHeader("bytes=900-", 1000);
  EXPECT_EQ(open.ranges[0].length, 100u);
  auto clipped = ParseRangeHeader("bytes=900-5000", 1000);
  EXPECT_EQ(clipped.ranges[0].length, 100u);
}

TEST(ByteRangesTest, UnsatisfiableZeroSuffixAndTooMany) {
  EXPECT_EQ(ParseRangeHeader("bytes=1000-", 1000).outcome, RangeOutcome::kUnsatisfiable);
  EXPECT_EQ(ParseRangeHeader("bytes=-0", 1000).outcome, RangeOutcome::kUnsatisfiable);
  EXPECT_EQ(ParseRangeHeader("bytes=0-0", 0).outcome, RangeOutcome::kUnsatisfiable);
  std::string many = "bytes=";
  for (size_t i = 0; i <= kMaxRanges; ++i) many += std::to_string(i) + "-" + std::to_string(i) + ",";
  EXPECT_EQ(ParseRangeHeader(many, 1000).outcome, RangeOutcome::kTooManyRanges);
  auto two = ParseRangeHeader("bytes=0-1, 5-6", 1000);
  ASSERT_EQ(two.outcome, RangeOutcome::kSatisfiable);
  EXPECT_EQ(two.ranges.size(), 2u);
}

TEST(ByteRangesTest, MalformedOrOtherUnitsAreIgnored) {
  for (const char* header : {"", "items=0-1", "bytes=5-1", "bytes=a-b", "bytes=", "bytes=1"}) {
    EXPECT_EQ(ParseRangeHeader(header, 1000).outcome, RangeOutcome::kWholeFile) << header;
  }
}

struct Collected {
  std::vector<MultipartPart> parts;
  std::vector<std::string> data;
  int ends = 0;
};

MultipartCallbacks CollectInto(Collected& out) {
  return MultipartCallbacks{[&out](const MultipartPart& part) {
                              out.parts.push_back(part);
                              out.data.emplace_back();
                              return Status::Ok();
                            },
                            [&out](const char* data, size_t size) {
                              out.data.back().append(data, size);
                              return Status::Ok();
                            },
                            [&out]() {
                              out.ends += 1;
                              return Status::Ok();
                            }};
}

const std::string kBody =
    "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nlanczos\r\n"
    "--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a;b.png\"\r\nContent-Type: image/png\r\n\r\n"
    "\x89PNG\r\n--Xy not a boundary\r\n\r\n--XyZ--\r\nepilogue";

TEST(MultipartParserTest, PartsSurviveAnySplitOfTheBody) {
  for (size_t piece = 1; piece <= kBody.size(); ++piece) {
    Collected got;
    MultipartParser parser("XyZ", CollectInto(got));
    for (size_t at = 0; at < kBody.size(); at += piece) {
      ASSERT_TRUE(parser.Feed(kBody.data() + at, std::min(piece, kBody.size() - at)).ok()) << piece;
    }
    ASSERT_TRUE(parser.Finish().ok()) << piece;
    ASSERT_EQ(got.parts.size(), 2u) << piece;
    EXPECT_EQ(got.parts[0].name, "model");
    EXPECT_EQ(got.data[0], "lanczos");
    EXPECT_EQ(got.parts[1].name, "image");
    EXPECT_EQ(got.parts[1].filename, "a;b.png");
    EXPECT_EQ(got.parts[1].content_type, "image/png");
    EXPECT_EQ(got.data[1], "\x89PNG\r\n--Xy not a boundary\r\n");
    EXPECT_EQ(got.ends, 2);
  }
}

TEST(MultipartParserTest, TruncatedOrMalformedBodiesAreInvalid) {
  Collected got;
  MultipartParser cut("XyZ", CollectInto(got));
  std::string half = kBody.substr(0, kBody.size() / 2);
  ASSERT_TRUE(cut.Feed(half.data(), half.size()).ok());
  EXPECT_EQ(cut.Finish().code(), StatusCode::kInvalid);
  MultipartParser no_disposition("B", CollectInto(got));
  std::string bad = "--B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B--";
  EXPECT_EQ(no_disposition.Feed(bad.data(), bad.size()).code(), StatusCode::kInvalid);
  MultipartParser huge_headers("B", CollectInto(got));
  std::string endless = "--B\r\nX-Long: " + std::string(20000, 'a');
  EXPECT_EQ(huge_headers.Feed(endless.data(), endless.size()).code(), StatusCode::kInvalid);
}

TEST(MultipartParserTest, BoundaryFromTheContentType) {
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=abc"), "abc");
  EXPECT_EQ(MultipartBoundary("Multipart/Form-Data; charset=x; boundary=\"a b\""), "a b");
  EXPECT_EQ(MultipartBoundary("image/png"), std::nullopt);
  EXPECT_EQ(MultipartBoundary("multipart/form-data"), std::nullopt);
}

TEST(QueryParamsTest, DecodesAndValidatesNamingTheParameter) {
  auto query = ParseQueryString("a=1&b=x%20y+z&a=2&flag");
  ASSERT_TRUE(query.ok());
  EXPECT_EQ(query->at("a"), "1");
  EXPECT_EQ(query->at("b"), "x y z");
  EXPECT_EQ(query->at("flag"), "");
  EXPECT_FALSE(ParseQueryString("a=%zz").ok());
  HttpRequest request;
  request.query = {{"wait", "yes"}, {"timeout", "-5"}, {"limit", "1e3"}, {"ok", "12.5"}};
  auto wait = BoolParam(request, "wait", false);
  ASSERT_FALSE(wait.ok());
  EXPECT_NE(wait.status().message().find("wait"), std::string::npos);
  for (const char* bad : {"-5", "abc", "1e20", "nan", ""}) {
    request.query["timeout"] = bad;
    auto timeout = SecondsParam(request, "timeout", 1, 0, 86400);
    ASSERT_FALSE(timeout.ok()) << bad;
    EXPECT_NE(timeout.status().message().find("timeout"), std::string::npos);
  }
  EXPECT_EQ(*SecondsParam(request, "ok", 1, 0, 86400), 12.5);
  EXPECT_EQ(*SecondsParam(request, "absent", 7, 0, 86400), 7);
  EXPECT_FALSE(IntegerParam(request, "limit", 1, 1, 1000).ok());
}

TEST(HttpRouterTest, MatchesSegmentsAndDecodesCaptures) {
  HttpRouter router;
  router.Add("GET", "/status/{}", nullptr);
  router.Add("GET", "/images/batches/{}/images/{}/result", nullptr);
  std::vector<std::string> captures;
  ASSERT_NE(router.Find("GET", "/status/abc", &captures), nullptr);
  EXPECT_EQ(captures, std::vector<std::string>{"abc"});
  ASSERT_NE(router.Find("GET", "/images/batches/b1/images/i%2F2/result", &captures), nullptr);
  EXPECT_EQ(captures, (std::vector<std::string>{"b1", "i/2"}));
  EXPECT_EQ(router.Find("POST", "/status/abc", &captures), nullptr);
  EXPECT_EQ(router.Find("GET", "/status/", &captures), nullptr);
  EXPECT_EQ(router.Find("GET", "/status/a/b", &captures), nullptr);
}

TEST(HttpStatusMapTest, OneAnswerPerStatusCode) {
  EXPECT_EQ(HttpStatusFor(StatusCode::kInvalid), 400);
  EXPECT_EQ(HttpStatusFor(StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(StatusCode::kLimit), 409);
  EXPECT_EQ(HttpStatusFor(StatusCode::kBadImage), 415);
  EXPECT_EQ(HttpStatusFor(StatusCode::kDeviceUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(StatusCode::kIo), 500);
}

}  // namespace
}  // namespace tessera::server
