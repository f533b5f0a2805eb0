// Some libav* damage reports exist only as log lines: Matroska's demuxer, for
// one, skips a damaged cluster (it resynchronises to the next) and says so only
// by logging an error, even with err_detect=explode, so the cluster's frames
// would vanish without a word. A watch collects the error lines libav logs for
// one object (an AVFormatContext) while it lives, so the reader can fail with
// them. Lines are still printed as before (av_log's default callback).
#pragma once

#include <mutex>
#include <string>

namespace tessera::video {

class LibavErrorWatch {
 public:
  // Watches `object`, the context libav names when it logs (its av_log's first argument).
  explicit LibavErrorWatch(const void* object);
  ~LibavErrorWatch();
  LibavErrorWatch(const LibavErrorWatch&) = delete;
  LibavErrorWatch& operator=(const LibavErrorWatch&) = delete;

  // The first error line logged for the object since the last call; empty when none.
  std::string Take();
  // Called with each error line logged for the object; keeps the first.
  void Record(const std::string& line);

 private:
  const void* object_;
  std::mutex mutex_;
  std::string first_error_;
};

}  // namespace tessera::video
