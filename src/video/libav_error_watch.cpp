#include "video/libav_error_watch.h"

#include <algorithm>
#include <cstdarg>
#include <utility>
#include <vector>

extern "C" {
#include <libavutil/log.h>
}

namespace tessera::video {
namespace {

// The live watches. av_log calls its callback from any thread (decoder threads
// included), hence the lock.
std::mutex g_watches_mutex;
std::vector<LibavErrorWatch*> g_watches;
std::vector<const void*> g_objects;  // g_objects[i] is what g_watches[i] watches

void RecordFor(const void* object, const std::string& line) {
  std::lock_guard lock(g_watches_mutex);
  for (size_t i = 0; i < g_objects.size(); ++i) {
    if (g_objects[i] == object) g_watches[i]->Record(line);
  }
}

void Callback(void* object, int level, const char* format, va_list args) {
  if (level <= AV_LOG_ERROR && object != nullptr) {
    va_list copy;
    va_copy(copy, args);
    char line[1024];
    int print_prefix = 0;
    av_log_format_line2(object, level, format, copy, line, sizeof(line), &print_prefix);
    va_end(copy);
    std::string text(line);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    RecordFor(object, text);
  }
  av_log_default_callback(object, level, format, args);
}

}  // namespace

LibavErrorWatch::LibavErrorWatch(const void* object) : object_(object) {
  static std::once_flag installed;
  std::call_once(installed, [] { av_log_set_callback(Callback); });
  std::lock_guard lock(g_watches_mutex);
  g_watches.push_back(this);
  g_objects.push_back(object_);
}

LibavErrorWatch::~LibavErrorWatch() {
  std::lock_guard lock(g_watches_mutex);
  auto it = std::find(g_watches.begin(), g_watches.end(), this);
  g_objects.erase(g_objects.begin() + (it - g_watches.begin()));
  g_watches.erase(it);
}

void LibavErrorWatch::Record(const std::string& line) {
  std::lock_guard lock(mutex_);
  if (first_error_.empty()) first_error_ = line;
}

std::string LibavErrorWatch::Take() {
  std::lock_guard lock(mutex_);
  return std::exchange(first_error_, std::string());
}

}  // namespace tessera::video
