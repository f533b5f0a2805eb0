// docs/server.md lists every setting with its flag and environment variable, so
// the documentation cannot fall behind the code.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "server/server_config.h"

namespace tessera::server {
namespace {

TEST(ServerDocs, EverySettingIsDocumentedWithItsFlagAndEnvironmentVariable) {
  std::ifstream in(std::string(TESSERA_SOURCE_DIR) + "/docs/server.md");
  ASSERT_TRUE(in) << "docs/server.md is missing";
  std::stringstream text;
  text << in.rdbuf();
  std::string doc = text.str();
  for (const SettingSpec& setting : ServerSettings()) {
    std::string flag = "--" + setting.key;
    for (char& c : flag) {
      if (c == '_') c = '-';
    }
    EXPECT_NE(doc.find("`" + flag + "`"), std::string::npos) << flag << " is not in docs/server.md";
    if (!setting.env.empty()) {
      EXPECT_NE(doc.find("`" + setting.env + "`"), std::string::npos) << setting.env << " is not in docs/server.md";
    }
  }
}

}  // namespace
}  // namespace tessera::server
