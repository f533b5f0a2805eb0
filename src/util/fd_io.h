// Blocking reads and writes on file descriptors, retried on EINTR and short counts.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "util/status.h"

namespace tessera {

// Reads up to `size` bytes; returns how many were read, 0 only at end of file.
Result<size_t> ReadSome(int fd, uint8_t* dst, size_t size);

// Reads exactly `size` bytes unless end of file comes first; returns the count read.
Result<size_t> ReadFull(int fd, uint8_t* dst, size_t size);

// Writes all of `bytes`.
Status WriteFull(int fd, std::span<const uint8_t> bytes);

// Writes every buffer in order with as few system calls as the kernel allows.
Status WriteAllVectored(int fd, std::span<const iovec> buffers);

}  // namespace tessera
