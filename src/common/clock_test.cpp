#include "common/clock.hpp"

#include <gtest/gtest.h>

namespace cdx {
namespace {

std::string round_trip(std::string_view text) {
  const auto t = parse_rfc3339(text);
  return t ? format_rfc3339(*t) : "refused";
}

TEST(Rfc3339, ParsesOffsetsAndFractions) {
  EXPECT_EQ(round_trip("2026-01-31T09:30:00+01:00"), "2026-01-31T08:30:00.000000Z");
  EXPECT_EQ(round_trip("2026-11-25T01:41:28.5z"), "2026-11-25T01:41:28.500000Z");
  EXPECT_EQ(round_trip("2026-02-29T00:00:00Z"), "refused");  // not a leap year
}

// Found by read_body_fuzz: a year past 2262 overflowed SysTime's nanoseconds (undefined behaviour; in a
// release build the date wrapped into another one and was stored so).
TEST(Rfc3339, YearsSysTimeCannotHoldAreRefused) {
  EXPECT_EQ(round_trip("4052-01-31T09:30:00+01:00"), "refused");
  EXPECT_EQ(round_trip("9999-12-31T23:59:59Z"), "refused");
  EXPECT_EQ(round_trip("0001-01-01T00:00:00Z"), "refused");
  EXPECT_EQ(round_trip("2261-12-31T23:59:59.999999-23:59"), "2262-01-01T23:58:59.999999Z");
  EXPECT_EQ(round_trip("1678-01-01T00:00:00+23:59"), "1677-12-31T00:01:00.000000Z");
}

TEST(Rfc3339, TimesBefore1970KeepTheirFraction) {
  EXPECT_EQ(round_trip("1969-12-31T23:59:59.5Z"), "1969-12-31T23:59:59.500000Z");
  EXPECT_EQ(round_trip("1900-06-01T12:00:00.000001Z"), "1900-06-01T12:00:00.000001Z");
}

}  // namespace
}  // namespace cdx
