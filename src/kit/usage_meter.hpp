// Usage metering: API calls per tenant per day, and per API key. The hot path is one relaxed atomic
// increment on a counter the credential caches hold; a maintenance thread drains the counts every two
// seconds and hands them to core, which adds them to its daily table.
//   auto c = meter.counter(tenant_id, key_id);   // cache fill (slow path, takes a lock)
//   c->add();                                     // every admitted request
//   for (const auto& u : meter.drain()) …         // {tenant_id, key_id, day, calls}
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace cdx::kit {

class UsageCounter {
 public:
  void add() { calls_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t take() { return calls_.exchange(0, std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> calls_{0};
};

struct Usage {
  std::string tenant_id;
  std::string key_id;  // empty: calls made with a user's token (or a SUPERADMIN acting in the tenant)
  std::string day;     // YYYY-MM-DD (UTC) of the drain
  int64_t calls = 0;
};

class UsageMeter {
 public:
  std::shared_ptr<UsageCounter> counter(const std::string& tenant_id, const std::string& key_id);
  // The calls counted since the last drain; counters nobody holds any more are dropped once empty.
  std::vector<Usage> drain();
  // Counts taken by drain() that could not be stored go back, so a core outage loses nothing.
  void restore(const std::vector<Usage>& usage);

 private:
  std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<UsageCounter>> counters_;
  std::vector<Usage> pending_;  // restored, sent with the next drain
};

}  // namespace cdx::kit
