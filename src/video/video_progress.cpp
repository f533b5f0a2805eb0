#include "video/video_progress.h"

#include <unistd.h>

#include <cmath>

namespace tessera::video {
namespace {

// Off a terminal, one line per this long: enough to follow, few enough for a log.
constexpr std::chrono::seconds kLogInterval{5};

std::string Clock(double seconds) {
  const auto total = static_cast<int64_t>(std::llround(seconds));
  char text[32];
  if (total >= 3600) {
    std::snprintf(text, sizeof(text), "%lld:%02lld:%02lld", static_cast<long long>(total / 3600),
                  static_cast<long long>(total / 60 % 60), static_cast<long long>(total % 60));
  } else {
    std::snprintf(text, sizeof(text), "%lld:%02lld", static_cast<long long>(total / 60),
                  static_cast<long long>(total % 60));
  }
  return text;
}

}  // namespace

std::string ProgressLine(int64_t done, int64_t total, std::chrono::duration<double> elapsed) {
  const double seconds = elapsed.count();
  const double fps = seconds > 0 ? static_cast<double>(done) / seconds : 0;
  char text[128];
  if (total > 0) {
    std::snprintf(text, sizeof(text), "frames %lld/%lld (%lld%%)  %.2f fps", static_cast<long long>(done),
                  static_cast<long long>(total), static_cast<long long>(100 * done / total), fps);
  } else {
    std::snprintf(text, sizeof(text), "frames %lld  %.2f fps", static_cast<long long>(done), fps);
  }
  std::string line = text;
  if (total > 0 && done < total) {
    line += fps > 0 ? "  ETA " + Clock(static_cast<double>(total - done) / fps) : "  ETA --:--";
  } else if (total > 0) {
    line += "  done in " + Clock(seconds);
  }
  return line;
}

ProgressPrinter::ProgressPrinter(std::FILE* out) : out_(out), terminal_(::isatty(::fileno(out)) == 1) {}

void ProgressPrinter::Update(int64_t done, int64_t total) {
  const auto now = std::chrono::steady_clock::now();
  const bool last = total > 0 && done >= total;
  const std::string line = ProgressLine(done, total, now - start_);
  if (terminal_) {
    std::fprintf(out_, "\r%s\033[K%s", line.c_str(), last ? "\n" : "");
  } else if (last || now - last_print_ >= kLogInterval) {
    std::fprintf(out_, "%s\n", line.c_str());
    last_print_ = now;
  } else {
    return;
  }
  std::fflush(out_);
}

}  // namespace tessera::video
