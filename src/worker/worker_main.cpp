#include "worker/worker_main.h"

#include <signal.h>
#include <unistd.h>

#include "imaging/vips_runtime.h"
#include "util/byte_size.h"
#include "util/log.h"
#include "worker/keep_alive_loop.h"

namespace tessera::worker {
namespace {

bool StartImaging(const WorkerOptions& options) {
  Status s = imaging::InitImaging({options.threads});
  if (!s.ok()) LogError("startup_failed").Field("error", s.message());
  return s.ok();
}

void LogReady(const WorkerOptions& o, std::string_view mode) {
  LogInfo("worker_ready")
      .Field("mode", mode)
      .Field("pid", static_cast<int64_t>(::getpid()))
      .Field("max_batch_items", static_cast<uint64_t>(o.limits.max_batch_items))
      .Field("max_message_bytes", o.limits.max_message_bytes)
      .Field("max_image_bytes", o.limits.max_image_bytes)
      .Field("max_image_pixels", o.limits.max_image_pixels)
      .Field("ram_budget_mb", ToMiB(o.limits.ram_budget_bytes))
      .Field("request_timeout_ms", static_cast<int64_t>(o.request_timeout.count()))
      .Field("gpu_fallback", o.gpu_fallback)
      .Field("device", o.device ? o.device->Name() : "gpu_id")  // "gpu_id": each request's decides
      .Field("format", imaging::OutputFormatName(o.format));
}

}  // namespace

int RunStdinWorker(WorkerOptions options, bool keep_alive) {
  // Frames get a private copy of stdout; fd 1 then points at stderr so that a stray
  // print from any library can never corrupt the protocol stream.
  int frames_fd = ::dup(STDOUT_FILENO);
  if (frames_fd < 0 || ::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
    LogError("startup_failed").Field("error", "cannot reserve stdout for frames");
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);  // a vanished client shows up as a write error instead
  ResolveMachineDefaults(&options);
  if (!StartImaging(options)) return 2;
  LogReady(options, keep_alive ? "keep-alive" : "stdin");
  KeepAliveLoop loop(options, STDIN_FILENO, frames_fd);
  int code = loop.Run(/*single_request=*/!keep_alive);
  ::close(frames_fd);
  return code;
}

}  // namespace tessera::worker
