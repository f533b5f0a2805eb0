#include "worker/file_batch.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "imaging/vips_runtime.h"
#include "util/byte_size.h"
#include "util/log.h"
#include "worker/batch_processor.h"

namespace tessera::worker {
namespace {

namespace fs = std::filesystem;

bool LooksLikeImageFile(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* e : {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".gif"}) {
    if (ext == e) return true;
  }
  return false;
}

// A one-line bar on a terminal; on anything else, a log line at every quarter.
class ProgressReporter {
 public:
  explicit ProgressReporter(bool enabled) : tty_(enabled && ::isatty(STDERR_FILENO) == 1), enabled_(enabled) {}

  void Start(const std::string& file, size_t index, size_t count) {
    file_ = file;
    label_ = std::to_string(index + 1) + "/" + std::to_string(count);
    last_quarter_ = 0;
  }
  void Update(size_t done, size_t total) {
    if (!enabled_ || total == 0) return;
    if (tty_) {
      constexpr int kWidth = 30;
      const int filled = static_cast<int>(kWidth * done / total);
      std::fprintf(stderr, "\r[%s] %-*s%s %3zu%% %s tile %zu/%zu", label_.c_str(), 0, "",
                   (std::string(filled, '=') + std::string(kWidth - filled, ' ')).c_str(), 100 * done / total,
                   file_.c_str(), done, total);
      if (done == total) std::fputc('\n', stderr);
      std::fflush(stderr);
      return;
    }
    const size_t quarter = 4 * done / total;
    if (quarter > last_quarter_ && total > 1) {
      last_quarter_ = quarter;
      LogInfo("progress").Field("file", file_).Field("tiles", std::to_string(done) + "/" + std::to_string(total));
    }
  }

 private:
  bool tty_;
  bool enabled_;
  std::string file_;
  std::string label_;
  size_t last_quarter_ = 0;
};

}  // namespace

int RunFileBatch(WorkerOptions options, const FileBatchSpec& spec) {
  std::error_code ec;
  const bool dir_input = fs::is_directory(spec.input, ec);
  if (!dir_input && !fs::is_regular_file(spec.input, ec)) {
    LogError("batch_failed").Field("error", "input not found: " + spec.input);
    return 2;
  }
  std::vector<fs::path> files;
  if (dir_input) {
    for (const auto& entry : fs::directory_iterator(spec.input, ec)) {
      if (entry.is_regular_file() && LooksLikeImageFile(entry.path())) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(spec.input);
  }
  const bool output_is_dir = dir_input || fs::is_directory(spec.output, ec);
  if (dir_input) {
    fs::create_directories(spec.output, ec);
    if (ec) {
      LogError("batch_failed").Field("error", "cannot create output directory " + spec.output + ": " + ec.message());
      return 2;
    }
  }
  ResolveMachineDefaults(&options);
  if (Status s = imaging::InitImaging({options.threads}); !s.ok()) {
    LogError("startup_failed").Field("error", s.message());
    return 2;
  }
  if (files.empty()) {
    LogWarn("batch_empty").Field("input", spec.input).Field("detail", "no .png/.jpg/.webp/.tif/.gif files");
    return 0;
  }

  BatchProcessor processor(options);
  ProgressReporter progress(spec.show_progress);
  processor.set_progress([&progress](size_t done, size_t total) { progress.Update(done, total); });
  size_t failed = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    const fs::path& in = files[i];
    progress.Start(in.filename().string(), i, files.size());
    auto started = std::chrono::steady_clock::now();
    std::ifstream file(in, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    protocol::Request request;
    request.engine = spec.engine;
    request.quality = spec.quality;
    request.gpu_id = spec.gpu_id;
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
    fs::path out = spec.output;
    if (output_is_dir) {
      out = fs::path(spec.output) / in.stem();
      out += std::string(imaging::OutputFormatExtension(options.format));
    }
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
          .Field("engine", outcome.engine_description)
          .Field("device", outcome.device)
          .Field("ms", MillisSince(started));
      if (outcome.device_fell_back) line.Field("gpu_fallback", true);
    } else {
      ++failed;
      line.Field("error", status.ToString());
    }
  }
  LogInfo("batch_done").Field("files", static_cast<uint64_t>(files.size())).Field("failed", static_cast<uint64_t>(failed));
  return failed == 0 ? 0 : 1;
}

}  // namespace tessera::worker
