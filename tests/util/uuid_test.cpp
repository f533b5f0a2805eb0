#include "util/uuid.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

namespace tessera {
namespace {

TEST(UuidTest, NewUuidV4HasTheCanonicalVersion4Form) {
  for (int i = 0; i < 200; ++i) {
    std::string id = NewUuidV4();
    ASSERT_EQ(id.size(), 36u) << id;
    EXPECT_TRUE(IsUuid(id)) << id;
    EXPECT_EQ(id[14], '4') << id;                                          // version
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;  // variant
  }
}

TEST(UuidTest, EveryRandomDigitVaries) {
  // A constant or badly seeded generator leaves some position fixed.
  std::vector<std::set<char>> seen(36);
  for (int i = 0; i < 500; ++i) {
    std::string id = NewUuidV4();
    for (size_t p = 0; p < id.size(); ++p) seen[p].insert(id[p]);
  }
  for (size_t p = 0; p < 36; ++p) {
    if (p == 8 || p == 13 || p == 18 || p == 23 || p == 14) {
      EXPECT_EQ(seen[p].size(), 1u) << "position " << p;
    } else if (p == 19) {
      EXPECT_EQ(seen[p].size(), 4u) << "position " << p;
    } else {
      EXPECT_GE(seen[p].size(), 12u) << "position " << p;
    }
  }
}

TEST(UuidTest, IdsFromManyThreadsAreDistinct) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 2000;
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&ids, t] {
      for (int i = 0; i < kPerThread; ++i) ids[t].push_back(NewUuidV4());
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::set<std::string> all;
  for (const auto& list : ids) all.insert(list.begin(), list.end());
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST(UuidTest, IsUuidAcceptsOnlyTheCanonicalLowerCaseForm) {
  EXPECT_TRUE(IsUuid("123e4567-e89b-12d3-a456-426614174000"));  // version 1 is fine too
  EXPECT_TRUE(IsUuid("00000000-0000-4000-8000-000000000000"));
  EXPECT_FALSE(IsUuid(""));
  EXPECT_FALSE(IsUuid("123E4567-E89B-12D3-A456-426614174000"));   // upper case
  EXPECT_FALSE(IsUuid("123e4567e89b12d3a456426614174000"));       // no hyphens
  EXPECT_FALSE(IsUuid("123e4567-e89b-12d3-a456-42661417400"));    // one short
  EXPECT_FALSE(IsUuid("123e4567-e89b-12d3-a456-4266141740000"));  // one long
  EXPECT_FALSE(IsUuid("123e4567-e89b-12d3-a456_426614174000"));   // wrong separator
  EXPECT_FALSE(IsUuid("123e4567-e89b-12d3-a4564-26614174000"));   // hyphen moved
  EXPECT_FALSE(IsUuid("123e4567-e89b-12d3-a456-42661417400g"));   // not hex
  EXPECT_FALSE(IsUuid("{23e4567-e89b-12d3-a456-42661417400}"));
}

}  // namespace
}  // namespace tessera
