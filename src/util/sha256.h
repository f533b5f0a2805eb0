// SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), written from the standards.
//
// Used to sign webhook bodies and to checksum files; no dependency on OpenSSL.
// A Sha256 object is not thread-safe; the free functions are.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace tessera {

using Sha256Digest = std::array<uint8_t, 32>;

// Streaming hash: Update() any number of times, then Finish() once. After
// Finish() the object is reset and can hash a new message.
class Sha256 {
 public:
  static constexpr size_t kBlockSize = 64;
  static constexpr size_t kDigestSize = 32;

  Sha256() { Reset(); }

  void Reset();
  void Update(std::span<const uint8_t> bytes);
  void Update(std::string_view text) {
    Update({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  }
  Sha256Digest Finish();

 private:
  void CompressBlock(const uint8_t* block);

  std::array<uint32_t, 8> state_;
  std::array<uint8_t, kBlockSize> buffer_;
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

// One-shot helpers.
Sha256Digest Sha256Of(std::span<const uint8_t> bytes);
Sha256Digest Sha256Of(std::string_view text);
std::string Sha256Hex(std::string_view text);  // 64 lower-case hex digits

// HMAC-SHA256 of `message` under `key` (any length; longer keys are hashed first).
Sha256Digest HmacSha256(std::string_view key, std::string_view message);
std::string HmacSha256Hex(std::string_view key, std::string_view message);

// Lower-case hex of any byte string.
std::string ToHex(std::span<const uint8_t> bytes);

}  // namespace tessera
