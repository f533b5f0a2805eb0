// The libpq wrapper's pieces that need no server: redaction, parameter
// encoding and the reading of text[] values. Statements themselves run in store_pg_test, against a real server.
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

TEST(ParseTextArrayTest, ReadsWhatPostgresqlWritesQuotedOrNot) {
  // As PostgreSQL prints a text[]: quotes only where needed, '"' and '\' escaped.
  auto values = ParseTextArray(R"({plain,"with,comma","we\"ird\\id","NULL","{braces}","",gpu-a/cuda:0})", "read");
  ASSERT_TRUE(values.ok()) << values.status().ToString();
  EXPECT_EQ(*values, (std::vector<std::string>{"plain", "with,comma", "we\"ird\\id", "NULL", "{braces}", "",
                                               "gpu-a/cuda:0"}));
  EXPECT_TRUE(ParseTextArray("{}", "read")->empty());
  // What PgParams::TextArray writes reads back as itself.
  const std::vector<std::string> written = {"a", "b c", "\"", "\\", ","};
  EXPECT_EQ(*ParseTextArray(*PgParams().TextArray(written).values()[0], "read"), written);
}

TEST(ParseTextArrayTest, AnythingElseIsAnErrorNamingTheOperation) {
  for (const char* text : {"", "{", "plain", "{a,}", "{,a}", "{\"open}", "{NULL}", "{a\"b\"}", "{\"a\"b}"}) {
    auto values = ParseTextArray(text, "read lanes");
    EXPECT_FALSE(values.ok()) << text;
    if (!values.ok()) {
      EXPECT_NE(values.status().message().find("read lanes"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace tessera::store::pg
