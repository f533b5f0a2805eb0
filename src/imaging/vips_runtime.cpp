#include "imaging/vips_runtime.h"

#include <vips/vips.h>

#include <mutex>

namespace tessera::imaging {
namespace {

void OnEval(VipsImage* image, VipsProgress* /*progress*/, void* user) {
  const auto* deadline = static_cast<const Deadline*>(user);
  if (deadline->Expired()) vips_image_set_kill(image, TRUE);
}

}  // namespace

Status InitImaging(const ImagingOptions& options) {
  static std::once_flag once;
  static Status result;
  std::call_once(once, [&] {
    if (VIPS_INIT("tessera") != 0) {
      result = InternalError("libvips failed to start: " + TakeVipsError());
      return;
    }
    // Only the loaders libvips marks as fuzzed and safe for untrusted input.
    vips_block_untrusted_set(TRUE);
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    if (options.threads > 0) vips_concurrency_set(options.threads);
    result = Status::Ok();
  });
  return result;
}

std::string TakeVipsError() {
  std::string text = vips_error_buffer();
  vips_error_clear();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  // libvips repeats itself across lines; the first line is the useful one.
  size_t nl = text.find('\n');
  if (nl != std::string::npos) text.resize(nl);
  return text;
}

EvalDeadlineGuard::EvalDeadlineGuard(VipsImage* image, const Deadline& deadline) : image_(image) {
  vips_image_set_progress(image_, TRUE);
  handler_id_ = g_signal_connect(image_, "eval", G_CALLBACK(OnEval), const_cast<Deadline*>(&deadline));
}

EvalDeadlineGuard::~EvalDeadlineGuard() {
  g_signal_handler_disconnect(image_, handler_id_);
  vips_image_set_progress(image_, FALSE);
}

}  // namespace tessera::imaging
