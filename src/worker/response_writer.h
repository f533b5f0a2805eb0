// Writes protocol v2 responses to a file descriptor. Outputs are sent straight
// from their own buffers (one vectored write), never copied into one response.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "protocol/wire_format.h"
#include "util/status.h"

namespace tessera::worker {

Status WriteOkResponse(int fd, uint64_t request_id, const std::vector<std::vector<uint8_t>>& outputs);
Status WriteErrorResponse(int fd, uint64_t request_id, protocol::WireStatus status, std::string_view message);

}  // namespace tessera::worker
