// A source of bytes read in order: a pipe, a file, or memory in tests.
#pragma once

#include <cstddef>
#include <cstdint>

#include "util/status.h"

namespace tessera {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to `size` bytes into `dst`; blocks until at least one byte is there.
  // Returns 0 only at end of stream.
  virtual Result<size_t> Read(uint8_t* dst, size_t size) = 0;
};

// Reads from a file descriptor it does not own.
class FdByteSource : public ByteSource {
 public:
  explicit FdByteSource(int fd) : fd_(fd) {}
  Result<size_t> Read(uint8_t* dst, size_t size) override;

 private:
  int fd_;
};

}  // namespace tessera
