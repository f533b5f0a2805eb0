#include "worker/worker_process.h"

#include "util/byte_order.h"
#include "util/fd_io.h"

namespace tessera::worker {

Result<WorkerProcess> WorkerProcess::Start(const std::string& binary, const std::vector<std::string>& mode_args,
                                           const std::string& stderr_path) {
  SubprocessOptions options;
  options.kill_with_parent = true;
  options.argv = {binary, "worker"};
  options.argv.insert(options.argv.end(), mode_args.begin(), mode_args.end());
  options.stderr_path = stderr_path;
  Result<Subprocess> child = Subprocess::Start(options);
  if (!child.ok()) return child.status();
  return WorkerProcess(std::move(child).value());
}

Status WorkerProcess::Send(std::span<const uint8_t> bytes) { return WriteFull(process_.stdin_fd(), bytes); }

Result<protocol::Response> WorkerProcess::Receive(uint64_t max_message_bytes) {
  uint8_t prefix[4];
  Result<size_t> got = ReadFull(process_.stdout_fd(), prefix, sizeof prefix);
  if (!got.ok()) return got.status();
  if (*got != sizeof prefix) return IoError("worker closed its output");
  uint32_t length = LoadLe32(prefix);
  if (length > max_message_bytes) return ProtocolError("response message_len " + std::to_string(length) + " too large");
  std::vector<uint8_t> payload(length);
  got = ReadFull(process_.stdout_fd(), payload.data(), payload.size());
  if (!got.ok()) return got.status();
  if (*got != length) return IoError("worker closed its output inside a response");
  return protocol::DecodeResponse(payload);
}

Result<protocol::Response> WorkerProcess::Call(std::span<const uint8_t> frame) {
  Status sent = Send(frame);
  if (!sent.ok()) return sent;
  return Receive();
}

Result<int> WorkerProcess::Finish() {
  process_.CloseStdin();
  return process_.Wait();
}

}  // namespace tessera::worker
