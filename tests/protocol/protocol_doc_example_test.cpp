// docs/protocol.md shows a request and a response byte by byte; this test encodes
// the same messages and compares, so the document cannot drift from the code.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "protocol/codec.h"

namespace tessera::protocol {
namespace {

// The hex bytes of the code block after `marker`: on each line, the leading run of
// two-digit hex tokens (the rest of the line is commentary).
std::vector<uint8_t> HexBlockAfter(const std::string& doc, const std::string& marker) {
  size_t at = doc.find(marker);
  EXPECT_NE(at, std::string::npos) << marker;
  if (at == std::string::npos) return {};
  size_t open = doc.find("```", at);
  size_t body = doc.find('\n', open) + 1;
  size_t close = doc.find("```", body);
  std::istringstream lines(doc.substr(body, close - body));
  std::vector<uint8_t> bytes;
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream tokens(line);
    std::string t;
    while (tokens >> t && t.size() == 2 && std::isxdigit(t[0]) && std::isxdigit(t[1])) {
      bytes.push_back(static_cast<uint8_t>(std::stoi(t, nullptr, 16)));
    }
  }
  return bytes;
}

std::string ReadDoc() {
  std::ifstream in(std::string(TESSERA_SOURCE_DIR) + "/docs/protocol.md");
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_FALSE(s.str().empty());
  return s.str();
}

const std::vector<uint8_t> kImage = {0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a};

TEST(ProtocolDocExampleTest, RequestMatchesTheEncoder) {
  RequestFrameSpec spec;
  spec.request_id = 7;
  spec.engine = 4;
  spec.quality = "x2";
  spec.gpu_id = -1;
  spec.images = {kImage};
  EXPECT_EQ(HexBlockAfter(ReadDoc(), "<!-- example-request -->"), EncodeRequestFrame(spec));
}

TEST(ProtocolDocExampleTest, ResponseMatchesTheEncoder) {
  std::vector<size_t> sizes = {kImage.size()};
  std::vector<uint8_t> frame = EncodeResponsePrefix(7, WireStatus::kOk, "", sizes);
  auto len = EncodeOutputLength(static_cast<uint32_t>(kImage.size()));
  frame.insert(frame.end(), len.begin(), len.end());
  frame.insert(frame.end(), kImage.begin(), kImage.end());
  EXPECT_EQ(HexBlockAfter(ReadDoc(), "<!-- example-response -->"), frame);
}

}  // namespace
}  // namespace tessera::protocol
