#include "worker/worker_main.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "imaging/vips_runtime.h"
#include "util/byte_size.h"
#include "util/log.h"
#include "worker/batch_processor.h"
#include "worker/keep_alive_loop.h"

namespace tessera::worker {
namespace {

namespace fs = std::filesystem;

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
      .Field("format", imaging::OutputFormatName(o.format));
}

bool LooksLikeImageFile(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* e : {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".gif"}) {
    if (ext == e) return true;
  }
  return false;
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

int RunDirectoryBatch(WorkerOptions options, const DirectoryBatchSpec& spec) {
  std::error_code ec;
  if (!fs::is_directory(spec.input_dir, ec)) {
    LogError("batch_failed").Field("error", "input is not a directory: " + spec.input_dir);
    return 2;
  }
  fs::create_directories(spec.output_dir, ec);
  if (ec) {
    LogError("batch_failed").Field("error", "cannot create output directory " + spec.output_dir + ": " + ec.message());
    return 2;
  }
  ResolveMachineDefaults(&options);
  if (!StartImaging(options)) return 2;
  LogReady(options, "batch");

  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(spec.input_dir, ec)) {
    if (entry.is_regular_file() && LooksLikeImageFile(entry.path())) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    LogWarn("batch_empty").Field("input", spec.input_dir).Field("detail", "no .png/.jpg/.webp/.tif/.gif files");
    return 0;
  }

  BatchProcessor processor(options);
  size_t failed = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    const fs::path& in = files[i];
    std::ifstream file(in, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    protocol::Request request;
    request.engine = spec.engine;
    request.images.push_back(bytes);
    Status status;
    BatchOutcome outcome;
    if (!file) {
      status = IoError("cannot read " + in.string());
    } else if (bytes.size() > options.limits.max_image_bytes) {
      status = LimitError("file is " + FormatBytes(bytes.size()) + ", over --max-image-bytes");
    } else {
      outcome = processor.Process(request, bytes.size(), Deadline::After(options.request_timeout));
      status = outcome.status;
    }
    fs::path out = fs::path(spec.output_dir) / in.stem();
    out += std::string(imaging::OutputFormatExtension(options.format));
    if (status.ok()) {
      std::string tmp = out.string() + ".partial";
      std::ofstream o(tmp, std::ios::binary | std::ios::trunc);
      o.write(reinterpret_cast<const char*>(outcome.outputs[0].data()),
              static_cast<std::streamsize>(outcome.outputs[0].size()));
      o.close();
      if (!o) {
        status = IoError("cannot write " + tmp);
      } else {
        fs::rename(tmp, out, ec);  // readers never see a half-written file
        if (ec) status = IoError("cannot rename " + tmp + ": " + ec.message());
      }
    }
    LogLine line(status.ok() ? LogLevel::kInfo : LogLevel::kWarn, "batch_file");
    line.Field("progress", std::to_string(i + 1) + "/" + std::to_string(files.size()))
        .Field("input", in.filename().string());
    if (status.ok()) {
      line.Field("output", out.string())
          .Field("ms", outcome.timings.decode_ms + outcome.timings.process_ms + outcome.timings.encode_ms);
    } else {
      ++failed;
      line.Field("error", status.ToString());
    }
  }
  LogInfo("batch_done")
      .Field("files", static_cast<uint64_t>(files.size()))
      .Field("failed", static_cast<uint64_t>(failed));
  return failed == 0 ? 0 : 1;
}

}  // namespace tessera::worker
