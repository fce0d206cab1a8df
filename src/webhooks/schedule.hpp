// When a failed delivery is tried again: the Standard Webhooks schedule (immediately, 5 s, 5 min, 30 min, 2
// h, 5 h, 10 h, 10 h after the attempts before), ±10 % jitter, and a Retry-After (429/503) honoured within
// bounds. The delays can be replaced (setting webhooks_retry_schedule) so tests run the schedule in seconds.
//   RetrySchedule s = RetrySchedule::standard();
//   auto wait = s.next(tries, retry_after, rng);   // nullopt: no tries left, the delivery has failed
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace cdx::webhooks {

using Millis = std::chrono::milliseconds;

class RetrySchedule {
 public:
  // delays[i]: the wait before attempt i + 1 (delays[0] is the first attempt's, normally 0).
  explicit RetrySchedule(std::vector<Millis> delays, double jitter = 0.1)
      : delays_(std::move(delays)), jitter_(jitter) {}
  static RetrySchedule standard();
  // "0,5,300,1800" (seconds, fractions allowed): nullopt + why when malformed.
  static std::optional<RetrySchedule> parse(std::string_view text, std::string* why = nullptr);

  // Attempts in all (the first one included).
  size_t attempts() const { return delays_.size(); }
  // The wait after `tries` failed attempts before the next, or nullopt when none is left. retry_after (a
  // 429/503's Retry-After) lengthens it, to at most max_retry_after.
  std::optional<Millis> next(size_t tries, std::optional<Millis> retry_after, std::mt19937_64& rng) const;
  const std::vector<Millis>& delays() const { return delays_; }

  static constexpr Millis kMaxRetryAfter = std::chrono::hours(6);

 private:
  std::vector<Millis> delays_;
  double jitter_;
};

// A Retry-After value: delay-seconds or an HTTP date, relative to now_unix; nullopt when malformed.
std::optional<Millis> parse_retry_after(std::string_view value, int64_t now_unix);

}  // namespace cdx::webhooks
