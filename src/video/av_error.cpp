#include "video/av_error.h"

extern "C" {
#include <libavutil/error.h>
#include <libavutil/log.h>
}

namespace tessera::video {

std::string AvErrorText(int error) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {};
  if (av_strerror(error, text, sizeof(text)) < 0) return "libav error " + std::to_string(error);
  return text;
}

Status AvStatus(StatusCode code, std::string_view what, int error) {
  return {code, std::string(what) + ": " + AvErrorText(error)};
}

void ShowOnlyLibavErrors() { av_log_set_level(AV_LOG_ERROR); }

}  // namespace tessera::video
