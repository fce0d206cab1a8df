#include "common/clock.hpp"

#include <fmt/format.h>

#include <ctime>

namespace cdx {

std::optional<SysTime> parse_rfc3339(std::string_view t) {
  auto digits = [&](size_t pos, size_t n, int& out) {
    if (pos + n > t.size()) return false;
    out = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (t[i] < '0' || t[i] > '9') return false;
      out = out * 10 + (t[i] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, s;
  if (!digits(0, 4, y) || t.size() < 20 || t[4] != '-' || !digits(5, 2, mo) || t[7] != '-' ||
      !digits(8, 2, d) || (t[10] != 'T' && t[10] != 't' && t[10] != ' ') || !digits(11, 2, h) ||
      t[13] != ':' || !digits(14, 2, mi) || t[16] != ':' || !digits(17, 2, s))
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  // SysTime counts nanoseconds in 64 bits (1677-09-21 to 2262-04-11): a date beyond would wrap into
  // another one, so it is refused like a malformed one.
  if (y < 1678 || y > 2261) return std::nullopt;
  size_t pos = 19;
  int64_t micros = 0;
  if (pos < t.size() && t[pos] == '.') {
    size_t n = 0;
    ++pos;
    while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9') {
      if (n < 6) micros = micros * 10 + (t[pos] - '0');
      ++n;
      ++pos;
    }
    if (n == 0) return std::nullopt;
    for (; n < 6; ++n) micros *= 10;
  }
  int offset = 0;
  if (pos < t.size() && (t[pos] == 'Z' || t[pos] == 'z')) {
    ++pos;
  } else if (pos < t.size() && (t[pos] == '+' || t[pos] == '-')) {
    int oh, om;
    if (!digits(pos + 1, 2, oh) || pos + 3 >= t.size() || t[pos + 3] != ':' || !digits(pos + 4, 2, om) ||
        oh > 23 || om > 59)
      return std::nullopt;
    offset = (t[pos] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != t.size()) return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year(y), std::chrono::month(mo), std::chrono::day(d)};
  if (!ymd.ok()) return std::nullopt;
  const auto days = std::chrono::sys_days(ymd);
  return SysTime(days) + std::chrono::hours(h) + std::chrono::minutes(mi) + std::chrono::seconds(s) -
         std::chrono::seconds(offset) + std::chrono::microseconds(micros);
}

std::string format_rfc3339(SysTime t) {
  // Floored, not truncated: a time before 1970 with a fraction is the second before plus the fraction.
  const auto us = std::chrono::floor<std::chrono::microseconds>(t.time_since_epoch()).count();
  const int64_t fraction = (us % 1000000 + 1000000) % 1000000;
  const time_t secs = static_cast<time_t>((us - fraction) / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, fraction);
}

}  // namespace cdx
