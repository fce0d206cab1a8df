#include "cms/delivery_cache.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace cdx::cms {
namespace {

CachedAnswer answer(std::string body) {
  CachedAnswer a;
  a.body = std::move(body);
  a.etag = "\"e\"";
  return a;
}

TEST(DeliveryCache, AnAnswerLivesUntilItsTenantChanges) {
  DeliveryCache cache(100, 60'000);
  const uint64_t g = cache.generation("t1");
  cache.put("t1", "t1 /a", g, answer("A"));
  cache.put("t2", "t2 /a", cache.generation("t2"), answer("B"));
  ASSERT_NE(cache.get("t1", "t1 /a"), nullptr);
  EXPECT_EQ(cache.get("t1", "t1 /a")->body, "A");
  cache.changed("t1");
  EXPECT_EQ(cache.get("t1", "t1 /a"), nullptr);
  EXPECT_NE(cache.get("t2", "t2 /a"), nullptr) << "another tenant's change drops nothing of t2";
}

TEST(DeliveryCache, AnAnswerReadBeforeAChangeCommittedIsNeverServed) {
  DeliveryCache cache(100, 60'000);
  const uint64_t before = cache.generation("t");  // a reader starts
  cache.changed("t");                             // a change commits while it reads
  cache.put("t", "t /a", before, answer("old"));  // the reader stores what it read
  EXPECT_EQ(cache.get("t", "t /a"), nullptr);
}

TEST(DeliveryCache, AnswersExpireAndTheCacheIsBounded) {
  DeliveryCache short_lived(100, 1);
  short_lived.put("t", "t /a", 0, answer("A"));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(short_lived.get("t", "t /a"), nullptr);
  DeliveryCache small(2, 60'000);
  for (int i = 0; i < 5; ++i) small.put("t", "t /" + std::to_string(i), 0, answer("x"));
  int kept = 0;
  for (int i = 0; i < 5; ++i) kept += small.get("t", "t /" + std::to_string(i)) != nullptr;
  EXPECT_LE(kept, 2);
  DeliveryCache off(0, 60'000);
  off.put("t", "t /a", 0, answer("A"));
  EXPECT_EQ(off.get("t", "t /a"), nullptr);
}

}  // namespace
}  // namespace cdx::cms
