#include "kit/rate_limiter.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace cdx::kit {
namespace {

TEST(GatewayRateLimiter, BurstUpToTheLimitThenRefuses) {
  Bucket b(60);  // one a second, burst 60
  const int64_t t0 = 1'000'000'000;
  for (int i = 0; i < 60; ++i) {
    Decision d = b.take(t0);
    ASSERT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.limit, 60);
    EXPECT_EQ(d.remaining, 59 - i);
  }
  Decision refused = b.take(t0);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.remaining, 0);
  EXPECT_EQ(refused.retry_after_s, 1);
}

TEST(GatewayRateLimiter, RefillsAtTheRate) {
  Bucket b(60);
  const int64_t t0 = 5'000'000'000;
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(b.take(t0).allowed);
  EXPECT_FALSE(b.take(t0 + 500'000).allowed);
  EXPECT_TRUE(b.take(t0 + 1'000'000).allowed);
  EXPECT_FALSE(b.take(t0 + 1'000'000).allowed);
  // A full minute later the whole burst is back.
  int allowed = 0;
  while (b.take(t0 + 61'000'000).allowed) ++allowed;
  EXPECT_EQ(allowed, 60);
}

TEST(GatewayRateLimiter, RateChangeTakesEffect) {
  Bucket b(2);
  const int64_t t0 = 9'000'000'000;
  EXPECT_TRUE(b.take(t0).allowed);
  EXPECT_TRUE(b.take(t0).allowed);
  EXPECT_FALSE(b.take(t0).allowed);
  b.set_rate(600);
  int allowed = 0;
  while (b.take(t0 + 60'000'000).allowed) ++allowed;
  EXPECT_GE(allowed, 599);
}

TEST(GatewayRateLimiter, ConcurrentTakersNeverExceedTheBurst) {
  Bucket b(1000);
  const int64_t t0 = 2'000'000'000;
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) allowed += b.take(t0).allowed;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 1000);
}

TEST(GatewayRateLimiter, RegistryReusesAndRetunesBuckets) {
  RateLimiter r;
  auto a = r.bucket("tenant:a", 100);
  auto again = r.bucket("tenant:a", 200);
  EXPECT_EQ(a.get(), again.get());
  EXPECT_EQ(a->per_minute(), 200);
  EXPECT_NE(r.bucket("tenant:b", 100).get(), a.get());
  EXPECT_EQ(r.size(), 2u);
}

}  // namespace
}  // namespace cdx::kit
