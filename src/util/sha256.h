// SHA-256 and HMAC-SHA256 through OpenSSL's libcrypto (never hand-written
// crypto): webhook signatures, plan and file checksums, session cookies.
// A Sha256 object is not thread-safe; the free functions are.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX

namespace tessera {

using Sha256Digest = std::array<uint8_t, 32>;

// Streaming hash: Update() any number of times, then Finish() once. After
// Finish() the object is reset and can hash a new message.
class Sha256 {
 public:
  static constexpr size_t kBlockSize = 64;
  static constexpr size_t kDigestSize = 32;

  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Reset();
  void Update(std::span<const uint8_t> bytes);
  void Update(std::string_view text) {
    Update({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  }
  Sha256Digest Finish();

 private:
  struct FreeContext {
    void operator()(evp_md_ctx_st* context) const;
  };
  std::unique_ptr<evp_md_ctx_st, FreeContext> context_;
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
