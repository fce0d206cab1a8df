// A per-thread cache with a TTL and a global invalidation epoch: reads take no lock and do not allocate,
// so credential and tenant checks stay off the database and off any mutex on the hot path.
//   LocalCache<Principal> keys;  keys.put("cdx_sk_ab12", principal, now_ms + 5000);
//   if (auto p = keys.get(prefix, now_ms)) …;   keys.invalidate_all();   // e.g. a key was revoked
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace cdx {

inline int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

template <class V>
class LocalCache {
 public:
  explicit LocalCache(size_t max_entries = 100'000) : id_(next_id()), max_entries_(max_entries) {}

  std::shared_ptr<const V> get(std::string_view key, int64_t now_ms) const {
    Local& l = local();
    sync(l);
    auto it = l.map.find(key);
    if (it == l.map.end()) return nullptr;
    if (it->second.expires_ms <= now_ms) {
      l.map.erase(it);
      return nullptr;
    }
    return it->second.value;
  }

  void put(std::string key, std::shared_ptr<const V> value, int64_t expires_ms) const {
    Local& l = local();
    sync(l);
    if (l.map.size() >= max_entries_) l.map.clear();  // bounded: a flood of distinct keys cannot grow it
    l.map.insert_or_assign(std::move(key), Entry{std::move(value), expires_ms});
  }

  // Every thread drops its entries before its next read.
  void invalidate_all() const { epoch_.fetch_add(1, std::memory_order_release); }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Entry {
    std::shared_ptr<const V> value;
    int64_t expires_ms;
  };
  struct Local {
    uint64_t epoch = 0;
    std::unordered_map<std::string, Entry, Hash, std::equal_to<>> map;
  };

  static uint64_t next_id() {
    static std::atomic<uint64_t> n{1};
    return n.fetch_add(1);
  }
  Local& local() const {
    thread_local std::unordered_map<uint64_t, Local> locals;
    thread_local uint64_t last_id = 0;
    thread_local Local* last = nullptr;
    if (last_id != id_) {  // most threads use one or two caches: remember the last one
      last = &locals[id_];
      last_id = id_;
    }
    return *last;
  }
  void sync(Local& l) const {
    const uint64_t e = epoch_.load(std::memory_order_acquire);
    if (l.epoch != e) {
      l.map.clear();
      l.epoch = e;
    }
  }

  uint64_t id_;
  size_t max_entries_;
  mutable std::atomic<uint64_t> epoch_{0};
};

}  // namespace cdx
