// Rate limits as GCRA token buckets (a leaky bucket with burst = the per-minute limit): one atomic word
// per bucket, lock-free, no allocation per check. Buckets hang off cached credentials and tenants, so a
// limited request costs two compare-and-swaps.
//   auto bucket = limiter.bucket("tenant:" + id, plan.rate_limit_per_minute);
//   Decision d = bucket->take(now_us);  if (!d.allowed) → 429, Retry-After: d.retry_after_s
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace cdx::kit {

struct Decision {
  bool allowed = true;
  int64_t limit = 0;          // requests per window
  int64_t remaining = 0;      // requests left in the current window
  int64_t reset_s = 0;        // seconds until the bucket is full again
  int64_t retry_after_s = 0;  // when refused: seconds until one request fits
};

class Bucket {
 public:
  explicit Bucket(int64_t per_minute) { set_rate(per_minute); }

  // Changing the rate (a new plan) takes effect on the next take(), with a fresh window.
  void set_rate(int64_t per_minute);
  int64_t per_minute() const { return per_minute_.load(std::memory_order_relaxed); }
  Decision take(int64_t now_us);

 private:
  std::atomic<int64_t> per_minute_{0};
  std::atomic<int64_t> interval_us_{0};  // one request's share of the minute
  std::atomic<int64_t> tat_us_{0};       // theoretical arrival time of the next request
};

// Owns the buckets; a bucket is looked up once per credential cache fill, not per request.
class RateLimiter {
 public:
  std::shared_ptr<Bucket> bucket(const std::string& key, int64_t per_minute);
  size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Bucket>> buckets_;
};

int64_t now_us();  // monotonic microseconds

}  // namespace cdx::kit
