#include "worker/response_writer.h"

#include <sys/uio.h>

#include <array>

#include "protocol/codec.h"
#include "util/fd_io.h"

namespace tessera::worker {

Status WriteOkResponse(int fd, uint64_t request_id, const std::vector<std::vector<uint8_t>>& outputs) {
  std::vector<size_t> sizes;
  sizes.reserve(outputs.size());
  for (const auto& o : outputs) sizes.push_back(o.size());
  std::vector<uint8_t> prefix = protocol::EncodeResponsePrefix(request_id, protocol::WireStatus::kOk, "", sizes);
  std::vector<std::array<uint8_t, 4>> lengths;
  lengths.reserve(outputs.size());
  std::vector<iovec> parts;
  parts.reserve(1 + 2 * outputs.size());
  parts.push_back({prefix.data(), prefix.size()});
  for (const auto& o : outputs) {
    lengths.push_back(protocol::EncodeOutputLength(static_cast<uint32_t>(o.size())));
    parts.push_back({lengths.back().data(), 4});
    parts.push_back({const_cast<uint8_t*>(o.data()), o.size()});
  }
  return WriteAllVectored(fd, parts);
}

Status WriteErrorResponse(int fd, uint64_t request_id, protocol::WireStatus status, std::string_view message) {
  std::vector<uint8_t> frame = protocol::EncodeResponsePrefix(request_id, status, message, {});
  return WriteFull(fd, frame);
}

}  // namespace tessera::worker
