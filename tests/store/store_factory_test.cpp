#include "store/store_factory.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

namespace tessera::store {
namespace {

namespace fs = std::filesystem;

TEST(StoreFactoryTest, OnlyPostgresqlAndPostgresSchemesNamePostgres) {
  EXPECT_TRUE(IsPostgresUrl("postgresql://db/jobs"));
  EXPECT_TRUE(IsPostgresUrl("postgres://u@db/jobs"));
  EXPECT_FALSE(IsPostgresUrl(""));
  EXPECT_FALSE(IsPostgresUrl("mysql://db/jobs"));
  EXPECT_FALSE(IsPostgresUrl("data/state.db"));
  EXPECT_FALSE(IsPostgresUrl("host=db dbname=jobs"));  // a key=value string is not a URL: say it as one
}

TEST(StoreFactoryTest, AnEmptySpecOpensTheSqliteFile) {
  std::string dir = (fs::temp_directory_path() / "tessera-factory-XXXXXX").string();
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/state.db";
  {
    auto store = OpenStore("", path);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    Job job;
    job.id = "kept";
    ASSERT_TRUE((*store)->Insert(job).ok());
  }
  EXPECT_TRUE(fs::exists(path));
  EXPECT_EQ(DescribeStore("", path), path);
  fs::remove_all(dir);
}

TEST(StoreFactoryTest, AnythingElseIsRefusedSayingWhatIsAcceptedWithoutShowingAPassword) {
  auto store = OpenStore("mysql://u:s3cret@db/jobs", "/nonexistent/state.db");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kInvalid);
  EXPECT_NE(store.status().message().find("postgresql://"), std::string::npos) << store.status().message();
  EXPECT_EQ(store.status().message().find("s3cret"), std::string::npos) << store.status().message();
  EXPECT_EQ(DescribeStore("postgresql://u:s3cret@db/jobs", "ignored"), "postgresql://u:***@db/jobs");
}

}  // namespace
}  // namespace tessera::store
