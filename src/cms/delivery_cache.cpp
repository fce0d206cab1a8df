#include "cms/delivery_cache.hpp"

namespace cdx::cms {

int64_t DeliveryCache::now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

uint64_t DeliveryCache::generation(std::string_view tenant) {
  std::lock_guard lock(mutex_);
  auto it = generations_.find(tenant);
  return it == generations_.end() ? 0 : it->second;
}

void DeliveryCache::changed(std::string_view tenant) {
  std::lock_guard lock(mutex_);
  ++generations_[std::string(tenant)];
}

std::shared_ptr<const CachedAnswer> DeliveryCache::get(std::string_view tenant, const std::string& key) {
  if (!enabled()) return nullptr;
  std::lock_guard lock(mutex_);
  auto it = answers_.find(key);
  if (it == answers_.end()) return nullptr;
  auto g = generations_.find(tenant);
  const uint64_t current = g == generations_.end() ? 0 : g->second;
  if (it->second->generation != current || it->second->expires_ms < now_ms()) {
    answers_.erase(it);
    return nullptr;
  }
  return it->second;
}

void DeliveryCache::put(std::string_view tenant, std::string key, uint64_t generation, CachedAnswer answer) {
  if (!enabled()) return;
  answer.generation = generation;
  answer.expires_ms = now_ms() + max_age_ms_;
  auto a = std::make_shared<CachedAnswer>(std::move(answer));
  std::lock_guard lock(mutex_);
  if (answers_.size() >= max_entries_) answers_.clear();  // bounded; refilled by the reads that follow
  answers_[std::move(key)] = std::move(a);
}

}  // namespace cdx::cms
