#include "common/local_cache.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace cdx {
namespace {

TEST(LocalCache, HitMissAndExpiry) {
  LocalCache<int> c;
  c.put("a", std::make_shared<int>(1), 100);
  ASSERT_NE(c.get("a", 50), nullptr);
  EXPECT_EQ(*c.get("a", 50), 1);
  EXPECT_EQ(c.get("a", 100), nullptr);  // expired
  EXPECT_EQ(c.get("b", 0), nullptr);
}

TEST(LocalCache, InvalidateDropsEveryThreadsEntries) {
  LocalCache<int> c;
  c.put("a", std::make_shared<int>(1), INT64_MAX);
  std::thread([&] { c.put("a", std::make_shared<int>(2), INT64_MAX); }).join();
  c.invalidate_all();
  EXPECT_EQ(c.get("a", 0), nullptr);
}

TEST(LocalCache, ThreadsDoNotShareEntries) {
  LocalCache<int> c;
  c.put("a", std::make_shared<int>(1), INT64_MAX);
  bool seen = true;
  std::thread([&] { seen = c.get("a", 0) != nullptr; }).join();
  EXPECT_FALSE(seen);
}

TEST(LocalCache, TwoCachesAreIndependent) {
  LocalCache<int> a, b;
  a.put("k", std::make_shared<int>(1), INT64_MAX);
  EXPECT_EQ(b.get("k", 0), nullptr);
  b.put("k", std::make_shared<int>(2), INT64_MAX);
  EXPECT_EQ(*a.get("k", 0), 1);
  EXPECT_EQ(*b.get("k", 0), 2);
}

TEST(LocalCache, BoundedSize) {
  LocalCache<int> c(3);
  for (int i = 0; i < 10; ++i) c.put(std::to_string(i), std::make_shared<int>(i), INT64_MAX);
  int present = 0;
  for (int i = 0; i < 10; ++i) present += c.get(std::to_string(i), 0) != nullptr;
  EXPECT_LE(present, 3);
  EXPECT_NE(c.get("9", 0), nullptr);
}

}  // namespace
}  // namespace cdx
