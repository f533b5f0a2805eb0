// The libpq wrapper's pieces that need no server: redaction and parameter
// encoding. Statements themselves run in store_pg_test, against a real server.
#include "store/pg_connection.h"

#include <gtest/gtest.h>

namespace tessera::store::pg {
namespace {

TEST(RedactConninfoTest, APasswordNeverShowsWhereverItIsWritten) {
  EXPECT_EQ(RedactConninfo("postgresql://tessera:s3cret@db.example:5432/jobs"),
            "postgresql://tessera:***@db.example:5432/jobs");
  EXPECT_EQ(RedactConninfo("postgres://u:p%40ss@h/db?sslmode=require"), "postgres://u:***@h/db?sslmode=require");
  EXPECT_EQ(RedactConninfo("postgresql://h/db?user=u&password=s3cret&sslmode=require"),
            "postgresql://h/db?user=u&password=***&sslmode=require");
  EXPECT_EQ(RedactConninfo("host=db user=u password=s3cret dbname=jobs"), "host=db user=u password=*** dbname=jobs");
  EXPECT_EQ(RedactConninfo("password='with space' host=db"), "password=*** host=db");
}

TEST(RedactConninfoTest, WithoutAPasswordTheTextIsUnchanged) {
  for (const char* text : {"postgresql://tessera@db.example/jobs", "postgresql:///jobs?host=/run/postgresql",
                           "host=/tmp/x user=postgres dbname=postgres", ""}) {
    EXPECT_EQ(RedactConninfo(text), text);
  }
}

TEST(PgParamsTest, ValuesAreTextInOrderAndNullIsNull) {
  PgParams params;
  params.Text("a 'quoted' text").Int(-42).Real(0.1).Bool(true).Null().Bool(false);
  ASSERT_EQ(params.size(), 6u);
  EXPECT_EQ(*params.values()[0], "a 'quoted' text");
  EXPECT_EQ(*params.values()[1], "-42");
  EXPECT_EQ(std::stod(*params.values()[2]), 0.1);  // exactly: 17 significant digits
  EXPECT_EQ(*params.values()[3], "true");
  EXPECT_FALSE(params.values()[4].has_value());
  EXPECT_EQ(*params.values()[5], "false");
}

TEST(PgParamsTest, ATextArrayQuotesEveryElementSoAnyTextReadsBackAsItself) {
  PgParams params;
  params.TextArray({"plain", "with,comma", "we\"ird\\id", "NULL", "{braces}", ""});
  EXPECT_EQ(*params.values()[0], R"({"plain","with,comma","we\"ird\\id","NULL","{braces}",""})");
  PgParams empty;
  empty.TextArray({});
  EXPECT_EQ(*empty.values()[0], "{}");
}

}  // namespace
}  // namespace tessera::store::pg
