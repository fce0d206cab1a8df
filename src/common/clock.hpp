// Time: an injectable clock and RFC 3339 formatting used for every stored timestamp.
//   std::string created = format_rfc3339(Clock::now());  // "2026-11-25T01:41:28.123456Z"
#pragma once
#include <chrono>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace cdx {

using SysTime = std::chrono::system_clock::time_point;

struct Clock {
  // Tests move time with set_offset; production never does.
  static SysTime now() { return std::chrono::system_clock::now() + offset(); }
  static int64_t unix_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(now().time_since_epoch()).count();
  }
  static void set_offset(std::chrono::seconds s) { offset() = s; }

 private:
  static std::chrono::seconds& offset() {
    static std::chrono::seconds o{0};
    return o;
  }
};

// Deadlines and idle stamps need no precision: the coarse monotonic clock costs a fraction of a full clock
// read and shares steady_clock's epoch, so its time points compare with steady_clock's.
inline std::chrono::steady_clock::time_point coarse_now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::chrono::steady_clock::time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
}

// Durations worth reporting (a request's, in the access log and the metrics): CLOCK_MONOTONIC, read through
// the vDSO for a few tens of nanoseconds, in steady_clock's epoch.
inline std::chrono::steady_clock::time_point precise_now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::chrono::steady_clock::time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
}

// Parses an RFC 3339 date-time ("2026-11-25T01:41:28Z", "…28.5+02:00"); nullopt when malformed or
// outside the years SysTime holds (64-bit nanoseconds: 1678 to 2261).
std::optional<SysTime> parse_rfc3339(std::string_view text);

// Fixed width, microseconds, 'Z': sorts lexicographically in both databases.
std::string format_rfc3339(SysTime t);

}  // namespace cdx
