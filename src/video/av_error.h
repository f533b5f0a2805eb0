// libav* error codes as Status values: every failure of a libav* call becomes a
// Status whose message says what was being done and av_strerror's text, so a
// user reads "cannot open in.mp4: No such file or directory", not "-2".
#pragma once

#include <string>
#include <string_view>

#include "util/status.h"

namespace tessera::video {

// av_strerror's text for a negative AVERROR code.
std::string AvErrorText(int error);

// `code` with "<what>: <av_strerror text>".
Status AvStatus(StatusCode code, std::string_view what, int error);

// libav* log lines below errors (x264's statistics, codec notices) would
// drown tessera's own key=value lines on stderr; this keeps only errors.
void ShowOnlyLibavErrors();

}  // namespace tessera::video
