// Little-endian integer loads and stores: the one byte reader/writer of the project.
// Written byte by byte so they are correct on any host and never read unaligned.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace tessera {

inline uint16_t LoadLe16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t LoadLe32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
inline uint64_t LoadLe64(const uint8_t* p) {
  return static_cast<uint64_t>(LoadLe32(p)) | (static_cast<uint64_t>(LoadLe32(p + 4)) << 32);
}

inline void StoreLe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
inline void StoreLe32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void StoreLe64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// Reads fields in order from a byte span; every read is bounds-checked and a failed
// read leaves the cursor where it was, so callers can report what was missing.
class ByteCursor {
 public:
  explicit ByteCursor(std::span<const uint8_t> bytes) : bytes_(bytes) {}

  size_t remaining() const { return bytes_.size() - pos_; }
  size_t position() const { return pos_; }

  bool ReadU16(uint16_t* out) {
    return ReadWith<2>([&](const uint8_t* p) { *out = LoadLe16(p); });
  }
  bool ReadU32(uint32_t* out) {
    return ReadWith<4>([&](const uint8_t* p) { *out = LoadLe32(p); });
  }
  bool ReadU64(uint64_t* out) {
    return ReadWith<8>([&](const uint8_t* p) { *out = LoadLe64(p); });
  }
  bool ReadI32(int32_t* out) {
    uint32_t raw = 0;
    if (!ReadU32(&raw)) return false;
    *out = static_cast<int32_t>(raw);
    return true;
  }
  // A view into the underlying bytes; no copy.
  bool ReadBytes(size_t n, std::span<const uint8_t>* out) {
    if (remaining() < n) return false;
    *out = bytes_.subspan(pos_, n);
    pos_ += n;
    return true;
  }

 private:
  template <size_t N, typename F>
  bool ReadWith(F&& f) {
    if (remaining() < N) return false;
    f(bytes_.data() + pos_);
    pos_ += N;
    return true;
  }

  std::span<const uint8_t> bytes_;
  size_t pos_ = 0;
};

// Appends fields to a byte vector.
class ByteWriter {
 public:
  explicit ByteWriter(std::vector<uint8_t>* out) : out_(out) {}

  void U16(uint16_t v) { StoreLe16(Grow(2), v); }
  void U32(uint32_t v) { StoreLe32(Grow(4), v); }
  void U64(uint64_t v) { StoreLe64(Grow(8), v); }
  void I32(int32_t v) { U32(static_cast<uint32_t>(v)); }
  void Bytes(std::span<const uint8_t> b) { out_->insert(out_->end(), b.begin(), b.end()); }
  void Bytes(std::string_view s) {
    Bytes(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  }

 private:
  uint8_t* Grow(size_t n) {
    out_->resize(out_->size() + n);
    return out_->data() + out_->size() - n;
  }
  std::vector<uint8_t>* out_;
};

}  // namespace tessera
