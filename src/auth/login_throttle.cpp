#include "auth/login_throttle.hpp"

namespace cdx::auth {

std::optional<int64_t> LoginThrottle::blocked(std::deque<int64_t>& q, size_t limit, int64_t now) const {
  while (!q.empty() && q.front() <= now - limits_.window_seconds) q.pop_front();
  if (q.size() < limit) return std::nullopt;
  return std::max<int64_t>(1, q[q.size() - limit] + limits_.window_seconds - now);
}

std::optional<int64_t> LoginThrottle::retry_after(const std::string& account, const std::string& address,
                                                  int64_t now) {
  std::lock_guard lock(mutex_);
  std::optional<int64_t> wait;
  if (auto it = accounts_.find(account); it != accounts_.end()) wait = blocked(it->second, limits_.per_account, now);
  if (auto it = addresses_.find(address); it != addresses_.end())
    if (auto w = blocked(it->second, limits_.per_address, now); w && (!wait || *w > *wait)) wait = w;
  return wait;
}

void LoginThrottle::failed(const std::string& account, const std::string& address, int64_t now) {
  std::lock_guard lock(mutex_);
  prune(now);
  auto push = [&](std::deque<int64_t>& q, size_t limit) {
    q.push_back(now);
    while (q.size() > limit) q.pop_front();  // only the newest `limit` failures matter
  };
  push(accounts_[account], limits_.per_account);
  push(addresses_[address], limits_.per_address);
}

void LoginThrottle::succeeded(const std::string& account) {
  std::lock_guard lock(mutex_);
  accounts_.erase(account);
}

void LoginThrottle::prune(int64_t now) {
  // Bounded memory: drop idle keys once a minute.
  if (now - last_prune_ < 60) return;
  last_prune_ = now;
  for (auto* m : {&accounts_, &addresses_})
    for (auto it = m->begin(); it != m->end();)
      it = !it->second.empty() && it->second.back() > now - limits_.window_seconds ? std::next(it) : m->erase(it);
}

}  // namespace cdx::auth
