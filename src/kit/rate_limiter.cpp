#include "kit/rate_limiter.hpp"

#include <algorithm>
#include <chrono>

namespace cdx::kit {

namespace {
constexpr int64_t kMinuteUs = 60'000'000;
}

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void Bucket::set_rate(int64_t per_minute) {
  per_minute = std::max<int64_t>(per_minute, 1);
  if (per_minute_.exchange(per_minute, std::memory_order_relaxed) == per_minute) return;
  interval_us_.store(std::max<int64_t>(kMinuteUs / per_minute, 1), std::memory_order_relaxed);
  // A new plan starts a fresh window: the old backlog was measured in the old rate's intervals.
  tat_us_.store(0, std::memory_order_relaxed);
}

Decision Bucket::take(int64_t now) {
  const int64_t limit = per_minute_.load(std::memory_order_relaxed);
  const int64_t interval = interval_us_.load(std::memory_order_relaxed);
  // Up to `limit` requests may arrive at once: the burst tolerance is one minute minus one interval.
  const int64_t tolerance = interval * (limit - 1);
  int64_t tat = tat_us_.load(std::memory_order_relaxed);
  for (;;) {
    const int64_t start = std::max(tat, now);
    if (start - now > tolerance) {
      Decision d;
      d.allowed = false;
      d.limit = limit;
      d.remaining = 0;
      d.retry_after_s = std::max<int64_t>(1, (start - now - tolerance + 999'999) / 1'000'000);
      d.reset_s = std::max<int64_t>(1, (start - now + 999'999) / 1'000'000);
      return d;
    }
    const int64_t next = start + interval;
    if (tat_us_.compare_exchange_weak(tat, next, std::memory_order_relaxed)) {
      Decision d;
      d.limit = limit;
      // The backlog next - now, in request intervals, is what the window has used.
      d.remaining = std::clamp<int64_t>(limit - (next - now + interval - 1) / interval, 0, limit);
      d.reset_s = (next - now + 999'999) / 1'000'000;
      return d;
    }
  }
}

std::shared_ptr<Bucket> RateLimiter::bucket(const std::string& key, int64_t per_minute) {
  std::lock_guard lock(mutex_);
  auto& b = buckets_[key];
  if (!b) {
    b = std::make_shared<Bucket>(per_minute);
  } else if (b->per_minute() != per_minute) {
    b->set_rate(per_minute);
  }
  return b;
}

size_t RateLimiter::size() const {
  std::lock_guard lock(mutex_);
  return buckets_.size();
}

}  // namespace cdx::kit
