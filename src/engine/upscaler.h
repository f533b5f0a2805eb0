// The contract every image engine meets: lanczos resampling today, the ncnn-format
// super-resolution models next. An Upscaler is prepared once (model loaded, options
// fixed) and then run on many images; Run() is const so one instance can serve
// every request of a worker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "imaging/image.h"
#include "util/deadline.h"
#include "util/status.h"

namespace tessera::engine {

struct Size {
  uint64_t width = 0;
  uint64_t height = 0;
  uint64_t pixels() const { return width * height; }
};

// Called as work advances (tiles done, tiles in all); may be empty.
using ProgressFn = std::function<void(size_t done, size_t total)>;

class Upscaler {
 public:
  virtual ~Upscaler() = default;

  // Short description for logs, e.g. "lanczos x2".
  virtual std::string Describe() const = 0;
  // Output dimensions for an input of the given size.
  virtual Size OutputSize(Size input) const = 0;
  // Upper estimate of the memory Run() needs beyond its input image, in bytes.
  virtual uint64_t WorkingBytes(Size input) const = 0;
  // Processes one decoded 8-bit sRGB(A) image. Stops with kTimeout when the
  // deadline passes.
  virtual Result<imaging::Image> Run(const imaging::Image& input, const Deadline& deadline,
                                     const ProgressFn& progress) const = 0;
};

}  // namespace tessera::engine
