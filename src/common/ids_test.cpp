#include "common/ids.hpp"

#include <gtest/gtest.h>

namespace cdx {
namespace {

TEST(Ids, UrlSafeIdAcceptsIdsAndRefusesEverythingElse) {
  EXPECT_TRUE(url_safe_id("01939a3c-7b2d-7000-8000-000000000001"));
  EXPECT_TRUE(url_safe_id("cdx_sk_AbC123"));
  for (std::string_view bad : {"", "a/b", "a b", "../x", "a?b", "é", "a%2f"}) EXPECT_FALSE(url_safe_id(bad)) << bad;
  EXPECT_TRUE(url_safe_id(std::string(64, 'a')));
  EXPECT_FALSE(url_safe_id(std::string(65, 'a')));
}

TEST(Ids, Base64UrlDecodesOnlyTheUrlSafeAlphabet) {
  std::string out;
  ASSERT_TRUE(base64url_decode(base64url_encode("hello, world"), out));
  EXPECT_EQ(out, "hello, world");
  const std::string good = base64url_encode(std::string(64, '\x5a'));
  // Every byte outside the alphabet is refused wherever it sits, 0xff and NUL included.
  for (const char bad : {'\xff', '\x80', '\0', '=', '+', '/', ' ', '.'}) {
    for (const size_t at : {size_t{0}, good.size() / 2, good.size()}) {
      std::string t = good;
      t.insert(t.begin() + static_cast<long>(at), bad);
      EXPECT_FALSE(base64url_decode(t, out)) << static_cast<int>(static_cast<unsigned char>(bad)) << " at " << at;
    }
  }
}

TEST(Ids, W3cTraceIdParsesOnlyWellFormedTraceparents) {
  EXPECT_EQ(w3c_trace_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            "4bf92f3577b34da6a3ce929d0e0e4736");
  for (std::string_view bad : {"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                               "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                               "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                               "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                               "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
                               "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01"})
    EXPECT_TRUE(w3c_trace_id(bad).empty()) << bad;
}

}  // namespace
}  // namespace cdx
