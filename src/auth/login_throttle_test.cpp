#include "auth/login_throttle.hpp"

#include <gtest/gtest.h>

namespace cdx::auth {
namespace {

TEST(AuthLoginThrottle, BlocksAccountAfterTenFailuresUntilWindowPasses) {
  LoginThrottle t;
  for (int i = 0; i < 9; ++i) t.failed("acct", "1.1.1.1", 1000 + i);
  EXPECT_FALSE(t.retry_after("acct", "1.1.1.1", 1010).has_value());
  t.failed("acct", "1.1.1.1", 1010);
  auto wait = t.retry_after("acct", "2.2.2.2", 1011);
  ASSERT_TRUE(wait.has_value());
  EXPECT_EQ(*wait, 1000 + 900 - 1011);
  EXPECT_FALSE(t.retry_after("acct", "2.2.2.2", 1000 + 901).has_value());
}

TEST(AuthLoginThrottle, BlocksAddressAfterFiftyFailuresAcrossAccounts) {
  LoginThrottle t;
  for (int i = 0; i < 50; ++i) t.failed("acct" + std::to_string(i), "9.9.9.9", 5000);
  EXPECT_TRUE(t.retry_after("fresh", "9.9.9.9", 5001).has_value());
  EXPECT_FALSE(t.retry_after("fresh", "8.8.8.8", 5001).has_value());
}

TEST(AuthLoginThrottle, SuccessClearsTheAccount) {
  LoginThrottle t;
  for (int i = 0; i < 5; ++i) t.failed("acct", "1.1.1.1", 100);
  t.succeeded("acct");
  for (int i = 0; i < 9; ++i) t.failed("acct", "1.1.1.1", 101);
  EXPECT_FALSE(t.retry_after("acct", "3.3.3.3", 102).has_value());
}

}  // namespace
}  // namespace cdx::auth
