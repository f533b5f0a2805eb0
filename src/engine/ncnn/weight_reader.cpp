#include "engine/ncnn/weight_reader.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "util/byte_order.h"

namespace tessera::engine::ncnn {

float HalfToFloat(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1u;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  const uint32_t mantissa = h & 0x3FFu;
  float magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);  // subnormal
  } else if (exponent == 31) {
    magnitude = mantissa == 0 ? INFINITY : NAN;
  } else {
    magnitude = std::ldexp(static_cast<float>(mantissa | 0x400u), static_cast<int>(exponent) - 25);
  }
  return sign ? -magnitude : magnitude;
}

Status WeightReader::Error(const std::string& what, const std::string& detail) const {
  return InvalidError(file_name_ + ": offset " + std::to_string(offset_) + ": " + what + ": " + detail);
}

Result<std::vector<float>> WeightReader::Read(size_t count, WeightEncoding encoding, const std::string& what) {
  if (count > (size_t{1} << 31)) return Error(what, "implausible element count " + std::to_string(count));
  auto need = [&](size_t n) { return bytes_.size() - offset_ >= n; };
  std::vector<float> out(count);
  uint32_t tag = 0;
  if (encoding == WeightEncoding::kTagged) {
    if (!need(4)) return Error(what, "file ends before the storage tag");
    tag = LoadLe32(bytes_.data() + offset_);
    if (tag == kTagFp16) {
      size_t data = count * 2;
      size_t padded = (data + 3) & ~size_t{3};
      if (!need(4 + padded)) return Error(what, "file ends inside " + std::to_string(count) + " fp16 values");
      const uint8_t* p = bytes_.data() + offset_ + 4;
      for (size_t i = 0; i < count; ++i) out[i] = HalfToFloat(LoadLe16(p + 2 * i));
      offset_ += 4 + padded;
      return out;
    }
    if (tag == kTagInt8) return Error(what, "int8-quantised weights are not supported; use an fp16 or fp32 model");
    if (tag != 0 && tag != kTagRawScaled) {
      return Error(what, "table-quantised weights (tag 0x" + [&] {
        char b[16];
        std::snprintf(b, sizeof b, "%08x", tag);
        return std::string(b);
      }() + ") are not supported; use an fp16 or fp32 model");
    }
    offset_ += 4;
  }
  if (!need(count * 4)) {
    return Error(what, "file ends inside " + std::to_string(count) + " fp32 values");
  }
  std::memcpy(out.data(), bytes_.data() + offset_, count * 4);  // the file is little-endian, as is x86-64
  offset_ += count * 4;
  return out;
}

}  // namespace tessera::engine::ncnn
