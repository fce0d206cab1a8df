#include "common/password.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include "common/ids.hpp"

namespace cdx {
namespace {

TEST(Password, HashVerifiesAndRejects) {
  init_crypto();
  const std::string h = hash_password("correct horse battery staple");
  EXPECT_EQ(h.rfind("$argon2id$v=19$m=19456,t=2,p=1$", 0), 0u);
  EXPECT_TRUE(verify_password(h, "correct horse battery staple"));
  EXPECT_FALSE(verify_password(h, "correct horse battery stapl"));
  EXPECT_NE(hash_password("correct horse battery staple"), h);  // fresh salt
}

TEST(Password, MalformedOrAbusiveHashesFailClosed) {
  init_crypto();
  for (const char* bad : {"", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                          "$argon2id$v=19$m=99999999,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                          "$argon2id$v=19$m=19456,t=100000,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                          "$argon2id$v=19$m=19456,t=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                          "$argon2id$v=19$m=19456,t=2,p=1$!!!$aGFzaA", "plain text"})
    EXPECT_FALSE(verify_password(bad, "x")) << bad;
}

TEST(Password, Policy) {
  EXPECT_TRUE(password_problem("short").has_value());
  EXPECT_TRUE(password_problem("Password123").has_value());  // common, whatever the case
  EXPECT_FALSE(password_problem("Tr0ub4dor&3-horse").has_value());
}

}  // namespace
}  // namespace cdx
