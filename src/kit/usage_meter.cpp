#include "kit/usage_meter.hpp"

#include "common/clock.hpp"

namespace cdx::kit {

std::shared_ptr<UsageCounter> UsageMeter::counter(const std::string& tenant_id, const std::string& key_id) {
  std::lock_guard lock(mutex_);
  auto& c = counters_[{tenant_id, key_id}];
  if (!c) c = std::make_shared<UsageCounter>();
  return c;
}

std::vector<Usage> UsageMeter::drain() {
  const std::string day = format_rfc3339(Clock::now()).substr(0, 10);
  std::lock_guard lock(mutex_);
  std::vector<Usage> out = std::move(pending_);
  pending_.clear();
  for (auto it = counters_.begin(); it != counters_.end();) {
    const uint64_t n = it->second->take();
    if (n) out.push_back({it->first.first, it->first.second, day, static_cast<int64_t>(n)});
    if (it->second.use_count() == 1 && n == 0) {
      it = counters_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

void UsageMeter::restore(const std::vector<Usage>& usage) {
  std::lock_guard lock(mutex_);
  if (pending_.size() + usage.size() > 1'000'000) return;  // core gone for long: bounded, oldest kept
  pending_.insert(pending_.end(), usage.begin(), usage.end());
}

}  // namespace cdx::kit
