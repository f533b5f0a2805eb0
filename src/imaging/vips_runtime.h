// Process-wide libvips setup, done once before any image work.
#pragma once

#include <string>

#include "util/deadline.h"
#include "util/status.h"

typedef struct _VipsImage VipsImage;

namespace tessera::imaging {

struct ImagingOptions {
  int threads = 0;  // 0: libvips' default (one per core)
};

// Starts libvips: loaders for untrusted formats blocked, the operation cache off
// (a long-lived worker must not grow with every distinct request). Idempotent.
Status InitImaging(const ImagingOptions& options);

// Takes and clears libvips' thread-local error text, for error messages.
std::string TakeVipsError();

// While alive, makes libvips abandon evaluation of `image` once `deadline` expires.
// Evaluation then fails and the caller reports a timeout.
class EvalDeadlineGuard {
 public:
  EvalDeadlineGuard(VipsImage* image, const Deadline& deadline);
  ~EvalDeadlineGuard();
  EvalDeadlineGuard(const EvalDeadlineGuard&) = delete;
  EvalDeadlineGuard& operator=(const EvalDeadlineGuard&) = delete;

 private:
  VipsImage* image_;
  unsigned long handler_id_ = 0;
};

}  // namespace tessera::imaging
