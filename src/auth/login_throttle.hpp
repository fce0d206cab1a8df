// Login throttling: after 10 failures for one account within 15 minutes, or 50 from one client address,
// logins answer 429 until the oldest counted failure leaves the window, right password or not.
// In memory and per process (a shared store such as Redis is the replica-wide step).
//   if (auto wait = throttle.retry_after(account, ip, now)) throw rate_limited(*wait);
#pragma once
#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace cdx::auth {

class LoginThrottle {
 public:
  struct Limits {
    size_t per_account = 10;
    size_t per_address = 50;
    int64_t window_seconds = 15 * 60;
  };
  LoginThrottle() = default;
  explicit LoginThrottle(Limits limits) : limits_(limits) {}

  // Seconds to wait when blocked; nullopt when a login may be tried.
  std::optional<int64_t> retry_after(const std::string& account, const std::string& address, int64_t now);
  void failed(const std::string& account, const std::string& address, int64_t now);
  void succeeded(const std::string& account);

 private:
  std::optional<int64_t> blocked(std::deque<int64_t>& q, size_t limit, int64_t now) const;
  void prune(int64_t now);
  Limits limits_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::deque<int64_t>> accounts_, addresses_;
  int64_t last_prune_ = 0;
};

}  // namespace cdx::auth
