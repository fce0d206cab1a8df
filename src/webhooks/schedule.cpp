#include "webhooks/schedule.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <ctime>

namespace cdx::webhooks {

using namespace std::chrono_literals;

RetrySchedule RetrySchedule::standard() { return RetrySchedule({0s, 5s, 5min, 30min, 2h, 5h, 10h, 10h}); }

std::optional<RetrySchedule> RetrySchedule::parse(std::string_view text, std::string* why) {
  std::vector<Millis> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = std::min(text.find(',', start), text.size());
    std::string item(text.substr(start, end - start));
    start = end + 1;
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    char* stop = nullptr;
    const double seconds = item.empty() ? -1 : std::strtod(item.c_str(), &stop);
    if (item.empty() || stop != item.c_str() + item.size() || !(seconds >= 0) || seconds > 7 * 86400) {
      if (why) *why = "expected comma-separated delays in seconds (0,5,300), each in [0, 604800]";
      return std::nullopt;
    }
    out.push_back(Millis(static_cast<int64_t>(seconds * 1000)));
    if (end == text.size()) break;
  }
  if (out.empty() || out.size() > 50) {
    if (why) *why = "expected 1 to 50 delays";
    return std::nullopt;
  }
  return RetrySchedule(std::move(out));
}

std::optional<Millis> RetrySchedule::next(size_t tries, std::optional<Millis> retry_after,
                                          std::mt19937_64& rng) const {
  if (tries >= delays_.size()) return std::nullopt;
  Millis base = delays_[tries];
  if (base.count() > 0 && jitter_ > 0) {
    std::uniform_real_distribution<double> d(1 - jitter_, 1 + jitter_);
    base = Millis(static_cast<int64_t>(static_cast<double>(base.count()) * d(rng)));
  }
  if (retry_after) base = std::max(base, std::min(*retry_after, kMaxRetryAfter));
  return base;
}

std::optional<Millis> parse_retry_after(std::string_view value, int64_t now_unix) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  int64_t seconds = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc() && p == value.data() + value.size()) {
    if (seconds < 0) return std::nullopt;
    return Millis(std::min<int64_t>(seconds, 86400 * 30) * 1000);
  }
  std::tm tm{};  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  const std::string s(value);
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return std::nullopt;
  const int64_t at = timegm(&tm);
  return Millis(std::max<int64_t>(0, at - now_unix) * 1000);
}

}  // namespace cdx::webhooks
