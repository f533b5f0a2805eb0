#include "video/libav_error_watch.h"

#include <gtest/gtest.h>

extern "C" {
#include <libavutil/log.h>
}

namespace tessera::video {
namespace {

// What av_log needs of the object it names: an AVClass pointer first.
AVClass TestClass() {
  AVClass c{};
  c.class_name = "watch-test";
  c.item_name = av_default_item_name;
  c.version = LIBAVUTIL_VERSION_INT;
  return c;
}
const AVClass kTestClass = TestClass();
struct LoggingObject {
  const AVClass* av_class = &kTestClass;
};

TEST(LibavErrorWatchTest, KeepsTheFirstErrorLoggedForItsObjectOnly) {
  av_log_set_level(AV_LOG_QUIET);  // recorded, not printed
  LoggingObject watched, other;
  LibavErrorWatch watch(&watched);
  EXPECT_EQ(watch.Take(), "");
  av_log(&watched, AV_LOG_WARNING, "only a warning\n");
  av_log(&other, AV_LOG_ERROR, "another object's error\n");
  EXPECT_EQ(watch.Take(), "");
  av_log(&watched, AV_LOG_ERROR, "cluster %d is damaged\n", 7);
  av_log(&watched, AV_LOG_ERROR, "a second error\n");
  const std::string first = watch.Take();
  EXPECT_NE(first.find("cluster 7 is damaged"), std::string::npos) << first;
  EXPECT_EQ(first.find("second"), std::string::npos) << first;
  EXPECT_EQ(watch.Take(), "");  // taken
  {
    LibavErrorWatch other_watch(&other);
    av_log(&other, AV_LOG_ERROR, "now watched\n");
    EXPECT_NE(other_watch.Take().find("now watched"), std::string::npos);
  }
  av_log(&other, AV_LOG_ERROR, "no longer watched\n");  // its watch is gone: nothing to record into
  EXPECT_EQ(watch.Take(), "");
}

}  // namespace
}  // namespace tessera::video
