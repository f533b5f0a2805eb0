#include "jobs/video_postprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>

#include "util/deadline.h"
#include "util/fd_io.h"
#include "util/log.h"
#include "util/subprocess.h"

namespace tessera::jobs {
namespace {

constexpr VideoSize kLandscape{1280, 720};
constexpr VideoSize kPortrait{720, 1280};
// The generator's short side, and the band each side of it in pad mode.
constexpr int kGeneratorShortSide = 704;
constexpr int kPadBand = (720 - kGeneratorShortSide) / 2;

// How much of a tool's stderr an error message carries: its last lines, bounded.
constexpr size_t kStderrTailBytes = 2048;
constexpr int kStderrTailLines = 8;
constexpr size_t kMaxProbeOutputBytes = 4096;

bool IsApiSize(VideoSize s) { return s == kLandscape || s == kPortrait; }

std::string ErrnoText() { return std::strerror(errno); }

bool IsExecutable(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// Whether `program` would be found the way execvp finds it.
bool ProgramExists(const std::string& program) {
  if (program.find('/') != std::string::npos) return IsExecutable(program);
  const char* path = ::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    size_t colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    if (dir.empty()) dir = ".";
    if (IsExecutable(dir + "/" + program)) return true;
    if (colon == std::string_view::npos) return false;
    dirs.remove_prefix(colon + 1);
  }
}

Status NotInstalled(const std::string& program) {
  return {StatusCode::kUnsupported,
          "'" + program + "' was not found (PATH or its path); install ffmpeg (Debian: apt-get install ffmpeg)"};
}

// Removes a file when it goes out of scope unless released.
class FileRemover {
 public:
  explicit FileRemover(std::string path) : path_(std::move(path)) {}
  ~FileRemover() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  FileRemover(const FileRemover&) = delete;
  FileRemover& operator=(const FileRemover&) = delete;
  void Release() { path_.clear(); }

 private:
  std::string path_;
};

// Creates an empty, uniquely named file from a mkstemp template; returns its path.
Result<std::string> CreateUniqueFile(std::string path_template, mode_t mode) {
  int fd = ::mkstemp(path_template.data());
  if (fd < 0) return IoError("cannot create a temporary file like " + path_template + ": " + ErrnoText());
  ::fchmod(fd, mode);
  ::close(fd);
  return path_template;
}

// The last few lines of a (possibly large) text file, joined with " | ".
std::string FileTail(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  struct stat st {};
  std::string text;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    off_t from = st.st_size > static_cast<off_t>(kStderrTailBytes) ? st.st_size - kStderrTailBytes : 0;
    text.resize(static_cast<size_t>(st.st_size - from));
    ssize_t n = ::pread(fd, text.data(), text.size(), from);
    text.resize(n > 0 ? static_cast<size_t>(n) : 0);
    if (from > 0) {
      size_t first_newline = text.find('\n');  // drop the cut first line
      text.erase(0, first_newline == std::string::npos ? 0 : first_newline + 1);
    }
  }
  ::close(fd);

  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find_first_of("\r\n", start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (line.find_first_not_of(" \t") != std::string::npos) lines.push_back(std::move(line));
    start = end + 1;
  }
  std::string tail;
  size_t first = lines.size() > static_cast<size_t>(kStderrTailLines) ? lines.size() - kStderrTailLines : 0;
  for (size_t i = first; i < lines.size(); ++i) {
    if (!tail.empty()) tail += " | ";
    tail += lines[i];
  }
  return tail;
}

struct ToolRun {
  int wait_status = 0;
  bool timed_out = false;
  std::string out;          // stdout, up to the caller's cap
  std::string stderr_tail;  // FileTail of its stderr
};

// Runs a tool to completion or until `timeout`. The tool's stdout is a pipe: its
// end of file tells when the tool exited without blocking in waitpid, so the
// deadline holds even for a tool that hangs.
Result<ToolRun> RunTool(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                        size_t max_stdout_bytes) {
  std::filesystem::path tmp_dir;
  std::error_code ec;
  tmp_dir = std::filesystem::temp_directory_path(ec);
  if (ec) tmp_dir = "/tmp";
  Result<std::string> stderr_path = CreateUniqueFile((tmp_dir / "tessera-tool-stderr-XXXXXX").string(), 0600);
  if (!stderr_path.ok()) return stderr_path.status();
  FileRemover remove_stderr(*stderr_path);

  SubprocessOptions options;
  options.argv = argv;
  options.pipe_stdin = false;
  options.pipe_stdout = true;
  options.stderr_path = *stderr_path;
  options.new_process_group = true;
  options.exec_failure_is_error = true;
  Result<Subprocess> child = Subprocess::Start(options);
  if (!child.ok()) {
    // ProgramExists said yes, but the program went away or cannot be run.
    if (child.status().code() == StatusCode::kNotFound) return NotInstalled(argv[0]);
    return child.status();
  }

  ToolRun run;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  uint8_t buffer[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      run.timed_out = true;
      break;
    }
    pollfd pfd{child->stdout_fd(), POLLIN, 0};
    int ready = ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left.count(), 60'000)));
    if (ready < 0) {
      if (errno == EINTR) continue;
      return IoError("poll on " + argv[0] + " failed: " + ErrnoText());
    }
    if (ready == 0) continue;
    Result<size_t> n = ReadSome(child->stdout_fd(), buffer, sizeof buffer);
    if (!n.ok()) return n.status();
    if (*n == 0) break;  // the tool closed stdout: it has exited
    size_t keep = std::min(*n, max_stdout_bytes - std::min(max_stdout_bytes, run.out.size()));
    run.out.append(reinterpret_cast<const char*>(buffer), keep);
  }
  if (run.timed_out) child->Signal(SIGKILL);
  Result<int> status = child->Wait();
  if (!status.ok()) return status.status();
  run.wait_status = *status;
  run.stderr_tail = FileTail(*stderr_path);
  return run;
}

// Turns a finished run into a Status: ok, or an error naming what failed and why.
Status ToolStatus(const ToolRun& run, const std::string& program, const std::string& what,
                  std::chrono::milliseconds timeout) {
  if (run.timed_out) {
    return {StatusCode::kTimeout,
            program + " took longer than " + std::to_string(timeout.count()) + " ms on " + what + " and was killed"};
  }
  const int ws = run.wait_status;
  if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0) return Status::Ok();
  std::string how = WIFEXITED(ws) ? "exit " + std::to_string(WEXITSTATUS(ws))
                                  : "signal " + std::to_string(WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
  std::string message = program + " failed on " + what + " (" + how + ")";
  if (!run.stderr_tail.empty()) message += ": " + run.stderr_tail;
  return InvalidError(std::move(message));
}

Status CheckInputFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {StatusCode::kNotFound, "no such video: " + path};
  if (!S_ISREG(st.st_mode)) return InvalidError("not a regular file: " + path);
  return Status::Ok();
}

bool ParseInt(std::string_view text, int* out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

}  // namespace

std::string VideoSize::ToString() const { return std::to_string(width) + "x" + std::to_string(height); }

Result<VideoSize> ParseApiSize(std::string_view text) {
  if (text == "1280x720") return kLandscape;
  if (text == "720x1280") return kPortrait;
  return InvalidError("unsupported size '" + std::string(text.substr(0, 64)) +
                      "': use \"1280x720\" (landscape) or \"720x1280\" (portrait)");
}

VideoSize GeneratorSize(VideoSize api_size) {
  if (api_size.width > api_size.height) return {api_size.width, kGeneratorShortSide};
  return {kGeneratorShortSide, api_size.height};
}

Result<ResizeMode> ParseResizeMode(std::string_view text) {
  if (text == "pad") return ResizeMode::kPad;
  if (text == "scale") return ResizeMode::kScale;
  return InvalidError("unsupported resize mode '" + std::string(text.substr(0, 64)) +
                      "': use \"pad\" (black bands, no distortion) or \"scale\" (slight stretch)");
}

const char* ResizeModeName(ResizeMode mode) { return mode == ResizeMode::kPad ? "pad" : "scale"; }

std::string VideoFilter(VideoSize api_size, ResizeMode mode) {
  std::string w = std::to_string(api_size.width);
  std::string h = std::to_string(api_size.height);
  if (mode == ResizeMode::kScale) return "scale=" + w + ":" + h;
  bool landscape = api_size.width > api_size.height;
  std::string x = landscape ? "0" : std::to_string(kPadBand);
  std::string y = landscape ? std::to_string(kPadBand) : "0";
  return "pad=" + w + ":" + h + ":" + x + ":" + y + ":black";
}

std::vector<std::string> FfmpegArgs(const std::string& input, const std::string& output, VideoSize api_size,
                                    ResizeMode mode) {
  // "file:" keeps a path that starts with '-' or holds a ':' from being read as an
  // option or a protocol.
  // clang-format off
  return {"ffmpeg",
          "-hide_banner", "-loglevel", "error",
          "-nostdin",
          "-y",
          "-i", "file:" + input,
          "-map", "0:v:0", "-map", "0:a?",  // the video, and the audio if there is any
          "-vf", VideoFilter(api_size, mode),
          "-c:v", "libx264", "-preset", "medium", "-crf", "18", "-pix_fmt", "yuv420p",
          "-c:a", "copy",
          "-movflags", "+faststart",
          "-f", "mp4",
          "file:" + output};
  // clang-format on
}

Status PostprocessVideo(const std::string& input, const std::string& output, VideoSize api_size, ResizeMode mode,
                        const VideoToolOptions& options) {
  if (!IsApiSize(api_size)) {
    return InvalidError("cannot post-process to " + api_size.ToString() + ": use 1280x720 or 720x1280");
  }
  if (Status s = CheckInputFile(input); !s.ok()) return s;
  if (!ProgramExists(options.ffmpeg)) return NotInstalled(options.ffmpeg);

  // Beside the output, so the final rename stays on one file system (atomic).
  std::filesystem::path out_path(output);
  std::filesystem::path dir = out_path.has_parent_path() ? out_path.parent_path() : std::filesystem::path(".");
  Result<std::string> partial =
      CreateUniqueFile((dir / ("." + out_path.filename().string() + ".partial-XXXXXX")).string(), 0644);
  if (!partial.ok()) return partial.status();
  FileRemover remove_partial(*partial);

  auto start = std::chrono::steady_clock::now();
  std::vector<std::string> argv = FfmpegArgs(input, *partial, api_size, mode);
  argv[0] = options.ffmpeg;
  Result<ToolRun> run = RunTool(argv, options.timeout, /*max_stdout_bytes=*/0);
  if (!run.ok()) return run.status();
  if (Status s = ToolStatus(*run, options.ffmpeg, input, options.timeout); !s.ok()) {
    LogWarn("video_postprocess_failed").Field("input", input).Field("output", output).Field("error", s.ToString());
    return s;
  }
  if (::rename(partial->c_str(), output.c_str()) != 0) {
    return IoError("cannot move the converted video to " + output + ": " + ErrnoText());
  }
  remove_partial.Release();
  LogInfo("video_postprocess")
      .Field("input", input)
      .Field("output", output)
      .Field("size", api_size.ToString())
      .Field("mode", ResizeModeName(mode))
      .Field("ms", MillisSince(start));
  return Status::Ok();
}

Result<VideoSize> ProbeVideoSize(const std::string& path, const VideoToolOptions& options) {
  if (Status s = CheckInputFile(path); !s.ok()) return s;
  if (!ProgramExists(options.ffprobe)) return NotInstalled(options.ffprobe);
  std::vector<std::string> argv = {options.ffprobe,       "-v",  "error",   "-select_streams", "v:0", "-show_entries",
                                   "stream=width,height", "-of", "csv=p=0", "file:" + path};
  Result<ToolRun> run = RunTool(argv, options.timeout, kMaxProbeOutputBytes);
  if (!run.ok()) return run.status();
  if (Status s = ToolStatus(*run, options.ffprobe, path, options.timeout); !s.ok()) return s;

  std::string_view out = run->out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ' || out.back() == ',')) {
    out.remove_suffix(1);
  }
  if (out.empty()) return InvalidError("no video stream in " + path);
  size_t comma = out.find(',');
  VideoSize size;
  if (comma == std::string_view::npos || !ParseInt(out.substr(0, comma), &size.width) ||
      !ParseInt(out.substr(comma + 1), &size.height) || size.width <= 0 || size.height <= 0) {
    return InvalidError("unexpected ffprobe output for " + path + ": '" + std::string(out.substr(0, 80)) + "'");
  }
  return size;
}

}  // namespace tessera::jobs
