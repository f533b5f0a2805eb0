// Reads weight arrays from an ncnn `.bin` file in the order the layers ask for
// them. Two ways to ask, as ncnn defines them:
//   - kTagged: a u32 tag first says how the data is stored: 0x01306B47 fp16,
//     0 or 0x0002C056 raw fp32; the int8 (0x000D4B38) and table-quantised forms
//     are refused with a clear error. fp16 data is padded to 4 bytes.
//   - kRawFloat: raw fp32, no tag (biases, slopes).
// Every read is bounds-checked; everything is returned as fp32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "util/status.h"

namespace tessera::engine::ncnn {

enum class WeightEncoding { kTagged, kRawFloat };

inline constexpr uint32_t kTagFp16 = 0x01306B47;
inline constexpr uint32_t kTagInt8 = 0x000D4B38;
inline constexpr uint32_t kTagRawScaled = 0x0002C056;

float HalfToFloat(uint16_t h);

class WeightReader {
 public:
  // `file_name` only labels error messages; `bytes` must outlive the reader.
  WeightReader(std::span<const uint8_t> bytes, std::string file_name)
      : bytes_(bytes), file_name_(std::move(file_name)) {}

  // `what` names the array for messages, e.g. "layer 'Conv_0' weight".
  Result<std::vector<float>> Read(size_t count, WeightEncoding encoding, const std::string& what);

  size_t offset() const { return offset_; }
  size_t size() const { return bytes_.size(); }

 private:
  Status Error(const std::string& what, const std::string& detail) const;

  std::span<const uint8_t> bytes_;
  std::string file_name_;
  size_t offset_ = 0;
};

}  // namespace tessera::engine::ncnn
