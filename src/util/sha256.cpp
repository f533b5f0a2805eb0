#include "util/sha256.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdexcept>

namespace tessera {

void Sha256::FreeContext::operator()(evp_md_ctx_st* context) const { EVP_MD_CTX_free(context); }

Sha256::Sha256() : context_(EVP_MD_CTX_new()) {
  // Only an allocation failure can make these fail: nothing sensible to return.
  if (!context_) throw std::bad_alloc();
  Reset();
}

Sha256::~Sha256() = default;

void Sha256::Reset() {
  if (EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr) != 1) throw std::runtime_error("EVP_DigestInit_ex");
}

void Sha256::Update(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return;
  if (EVP_DigestUpdate(context_.get(), bytes.data(), bytes.size()) != 1) throw std::runtime_error("EVP_DigestUpdate");
}

Sha256Digest Sha256::Finish() {
  Sha256Digest digest{};
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(context_.get(), digest.data(), &length) != 1 || length != digest.size()) {
    throw std::runtime_error("EVP_DigestFinal_ex");
  }
  Reset();
  return digest;
}

Sha256Digest Sha256Of(std::span<const uint8_t> bytes) {
  Sha256 h;
  h.Update(bytes);
  return h.Finish();
}

Sha256Digest Sha256Of(std::string_view text) {
  Sha256 h;
  h.Update(text);
  return h.Finish();
}

std::string Sha256Hex(std::string_view text) { return ToHex(Sha256Of(text)); }

Sha256Digest HmacSha256(std::string_view key, std::string_view message) {
  Sha256Digest digest{};
  unsigned int length = 0;
  static const uint8_t kEmpty = 0;  // HMAC() wants a non-null key pointer
  const unsigned char* out =
      HMAC(EVP_sha256(), key.empty() ? static_cast<const void*>(&kEmpty) : static_cast<const void*>(key.data()),
           static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest.data(), &length);
  if (out == nullptr || length != digest.size()) throw std::runtime_error("HMAC-SHA256");
  return digest;
}

std::string HmacSha256Hex(std::string_view key, std::string_view message) { return ToHex(HmacSha256(key, message)); }

std::string ToHex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    hex.push_back(kDigits[b >> 4]);
    hex.push_back(kDigits[b & 0xf]);
  }
  return hex;
}

}  // namespace tessera
