#include "http/types.hpp"

#include <gtest/gtest.h>

#include "common/error.hpp"

namespace cdx::http {
namespace {

std::string read(std::string_view query) {
  Request req;
  req.query = query;
  try {
    return req.query_param("q").value_or("absent");
  } catch (const Error& e) {
    return e.field_errors().at(0).message;
  }
}

TEST(QueryParam, DecodesPercentAndPlus) {
  EXPECT_EQ(read("a=1&q=caf%C3%A9+au+lait"), "café au lait");
  EXPECT_EQ(read("q=%F0%9F%98%80"), "\xF0\x9F\x98\x80");  // U+1F600, four bytes
  EXPECT_EQ(read("x=1"), "absent");
}

// Found by pagination_fuzz: bytes that are not UTF-8 passed (a code point past U+10FFFF, surrogates,
// three-byte overlong forms) and reached SQL: SQLite took them, PostgreSQL answered 400 naming nothing.
TEST(QueryParam, TextThatIsNotUtf8Is422) {
  for (std::string_view q :
       {"q=%F4%90%80%80", "q=%ED%A0%80", "q=%E0%80%80", "q=%F5%80%80%80", "q=%C0%80", "q=%ff"})
    EXPECT_EQ(read(q), "must be valid UTF-8 (percent-encoded)") << q;
}

TEST(QueryParam, ControlCharactersAre422C1Included) {
  for (std::string_view q : {"q=a%00b", "q=%0A", "q=%7F", "q=%C2%85"})
    EXPECT_EQ(read(q), "must not contain control characters") << q;
}

}  // namespace
}  // namespace cdx::http
