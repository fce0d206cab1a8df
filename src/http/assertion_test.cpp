#include "http/assertion.hpp"

#include <gtest/gtest.h>

#include "common/ids.hpp"

namespace cdx::http {
namespace {

const std::string kSecret(40, 's');

Assertion user_assertion() {
  Assertion a;
  a.kind = Assertion::Kind::kPrincipal;
  a.principal.kind = Principal::Kind::kUser;
  a.principal.id = "u-1";
  a.principal.name = "ann@acme.test";
  a.principal.role = Role::kAdmin;
  a.principal.tenant_id = "t-1";
  a.principal.scopes = {"crm:read"};
  a.principal.session_id = "sid-9";
  a.principal.expires_at = 1'900'000'000;
  a.principal.scope_limited = true;
  a.tenant_id = "t-1";
  return a;
}

TEST(Assertion, RoundTripsAPrincipal) {
  init_crypto();
  AssertionKey key(kSecret);
  const auto got = key.verify(key.sign(user_assertion(), 1000), 1001);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->kind, Assertion::Kind::kPrincipal);
  EXPECT_EQ(got->principal.id, "u-1");
  EXPECT_EQ(got->principal.name, "ann@acme.test");
  EXPECT_EQ(got->principal.role, Role::kAdmin);
  EXPECT_EQ(got->principal.tenant_id, "t-1");
  EXPECT_EQ(got->principal.scopes, std::vector<std::string>{"crm:read"});
  EXPECT_EQ(got->principal.session_id, "sid-9");
  EXPECT_EQ(got->principal.expires_at, 1'900'000'000);
  EXPECT_TRUE(got->principal.scope_limited);
  EXPECT_FALSE(got->principal.publishable);
  EXPECT_EQ(got->tenant_id, "t-1");
  EXPECT_EQ(got->expires_at, 1000 + kAssertionTtlSeconds);
}

TEST(Assertion, CarriesServiceAndAnonymousCallers) {
  init_crypto();
  AssertionKey key(kSecret);
  Assertion s;
  s.kind = Assertion::Kind::kService;
  s.service = "core";
  auto got = key.verify(key.sign(s, 1000), 1000);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->kind, Assertion::Kind::kService);
  EXPECT_EQ(got->service, "core");
  got = key.verify(key.sign({}, 1000), 1000);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->kind, Assertion::Kind::kAnonymous);
  EXPECT_TRUE(got->tenant_id.empty());
}

// Issue 14 item 8: a header captured off one request opens no other: the binding names method and target.
TEST(Assertion, ABoundHeaderOpensOnlyItsOwnRequest) {
  init_crypto();
  AssertionKey key(kSecret);
  const std::string assertion = key.sign(user_assertion(), 1000);
  const std::string header = key.bind(assertion, "GET", "/api/v1/crm/contacts?limit=5");
  EXPECT_EQ(key.unbind(header, "GET", "/api/v1/crm/contacts?limit=5"), assertion);
  EXPECT_TRUE(key.verify(key.unbind(header, "GET", "/api/v1/crm/contacts?limit=5"), 1001));
  EXPECT_TRUE(key.unbind(header, "DELETE", "/api/v1/crm/contacts?limit=5").empty());  // another method
  EXPECT_TRUE(key.unbind(header, "GET", "/api/v1/auth/api-keys").empty());            // another path
  EXPECT_TRUE(key.unbind(header, "GET", "/api/v1/crm/contacts?limit=500").empty());   // another query
  EXPECT_TRUE(key.unbind(assertion, "GET", "/api/v1/crm/contacts?limit=5").empty());  // unbound
  EXPECT_TRUE(
      AssertionKey(std::string(40, 'x')).unbind(header, "GET", "/api/v1/crm/contacts?limit=5").empty());
  // Swapping in another (valid) assertion under the same binding fails too.
  Assertion anon;
  const std::string other = key.sign(anon, 1000) + header.substr(header.rfind('~'));
  EXPECT_TRUE(key.unbind(other, "GET", "/api/v1/crm/contacts?limit=5").empty());
  EXPECT_LE(kAssertionTtlSeconds, 15);
}

TEST(Assertion, RejectsExpiredForgedAndGarbage) {
  init_crypto();
  AssertionKey key(kSecret);
  const std::string token = key.sign(user_assertion(), 1000);
  EXPECT_FALSE(key.verify(token, 1000 + kAssertionTtlSeconds));          // expired
  EXPECT_FALSE(AssertionKey(std::string(40, 'x')).verify(token, 1001));  // another secret

  // A payload re-encoded with another role keeps the old MAC: refused.
  const size_t dot = token.rfind('.');
  std::string payload;
  ASSERT_TRUE(base64url_decode(token.substr(3, dot - 3), payload));
  const size_t role = payload.find("\"ADMIN\"");
  ASSERT_NE(role, std::string::npos);
  payload.replace(role, 7, "\"CLIENT\"");
  EXPECT_FALSE(key.verify("v1." + base64url_encode(payload) + token.substr(dot), 1001));

  for (const std::string& bad : std::vector<std::string>{"", "v1.", "v1..", "v2." + token.substr(3),
                                                         token + "x", "v1.e30.AAAA", std::string(10000, 'a')})
    EXPECT_FALSE(key.verify(bad, 1001)) << bad.substr(0, 40);
  EXPECT_THROW(AssertionKey("short"), std::invalid_argument);
}

}  // namespace
}  // namespace cdx::http
