// `tessera thumbnail`: one image's preview, in a process of its own. The server
// runs it for GET /jobs/{id}/thumbnail, so a decoder that crashes on a hostile
// image takes down this child, never the server.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "imaging/thumbnail.h"
#include "imaging/vips_runtime.h"
#include "util/file_io.h"

namespace tessera::cli {
namespace {

struct ThumbnailOptions {
  std::string input;
  std::string output;
  int max_side = 256;
  int timeout_s = 20;
};

constexpr uint64_t kMaxInputBytes = 512ull << 20;
constexpr uint64_t kMaxPixels = 200'000'000;

int RunThumbnail(const ThumbnailOptions& options) {
  // Whatever happens inside the decoder, the process ends: the server waits on it.
  ::alarm(static_cast<unsigned>(options.timeout_s) + 5);
  if (Status s = imaging::InitImaging({1}); !s.ok()) {
    std::fprintf(stderr, "thumbnail: %s\n", s.ToString().c_str());
    return 1;
  }
  auto bytes = ReadFileBytes(options.input, kMaxInputBytes);
  if (!bytes.ok()) {
    std::fprintf(stderr, "thumbnail: %s\n", bytes.status().ToString().c_str());
    return 1;
  }
  auto thumbnail = imaging::MakeThumbnail(*bytes, options.max_side, kMaxPixels,
                                          Deadline::After(std::chrono::seconds(options.timeout_s)));
  if (!thumbnail.ok()) {
    std::fprintf(stderr, "thumbnail: %s\n", thumbnail.status().ToString().c_str());
    return 1;
  }
  if (Status s = WriteFileAtomically(options.output, *thumbnail); !s.ok()) {
    std::fprintf(stderr, "thumbnail: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace

void AddThumbnailCommand(CLI::App& app, CommandRunner* runner) {
  auto options = std::make_shared<ThumbnailOptions>();
  CLI::App* cmd = app.add_subcommand("thumbnail", "Write a small WebP preview of an image (the server's thumbnails)");
  cmd->add_option("-i,--input", options->input, "Input image")->required();
  cmd->add_option("-o,--output", options->output, "Output WebP file (written atomically)")->required();
  cmd->add_option("--max-side", options->max_side, "Longest side in pixels; smaller images keep their size")
      ->check(CLI::Range(16, 2048))
      ->capture_default_str();
  cmd->add_option("--timeout-s", options->timeout_s, "Seconds before the work is abandoned")
      ->check(CLI::Range(1, 600))
      ->capture_default_str();
  cmd->callback([runner, options] { *runner = [options] { return RunThumbnail(*options); }; });
}

}  // namespace tessera::cli
