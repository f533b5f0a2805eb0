#include "util/fd_io.h"

#include <limits.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace tessera {

Result<size_t> ReadSome(int fd, uint8_t* dst, size_t size) {
  for (;;) {
    ssize_t n = ::read(fd, dst, size);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    return IoError(std::string("read failed: ") + std::strerror(errno));
  }
}

Result<size_t> ReadFull(int fd, uint8_t* dst, size_t size) {
  size_t done = 0;
  while (done < size) {
    Result<size_t> n = ReadSome(fd, dst + done, size - done);
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    done += *n;
  }
  return done;
}

Status WriteFull(int fd, std::span<const uint8_t> bytes) {
  iovec one{const_cast<uint8_t*>(bytes.data()), bytes.size()};
  return WriteAllVectored(fd, std::span<const iovec>(&one, 1));
}

Status WriteAllVectored(int fd, std::span<const iovec> buffers) {
  std::vector<iovec> pending(buffers.begin(), buffers.end());
  size_t first = 0;
  while (first < pending.size()) {
    if (pending[first].iov_len == 0) {
      ++first;
      continue;
    }
    int count = static_cast<int>(std::min<size_t>(pending.size() - first, IOV_MAX));
    ssize_t n = ::writev(fd, pending.data() + first, count);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError(std::string("write failed: ") + std::strerror(errno));
    }
    size_t left = static_cast<size_t>(n);
    while (left > 0 && first < pending.size()) {
      iovec& v = pending[first];
      size_t take = std::min(left, v.iov_len);
      v.iov_base = static_cast<uint8_t*>(v.iov_base) + take;
      v.iov_len -= take;
      left -= take;
      if (v.iov_len == 0) ++first;
    }
  }
  return Status::Ok();
}

}  // namespace tessera

#include "util/byte_source.h"

namespace tessera {

Result<size_t> FdByteSource::Read(uint8_t* dst, size_t size) { return ReadSome(fd_, dst, size); }

}  // namespace tessera
