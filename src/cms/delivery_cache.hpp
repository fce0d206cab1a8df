// Answers of the delivery API kept in memory, so a client app's repeated reads cost neither a worker nor the
// database. An answer is valid while its tenant's generation is the one it was read under (every committed
// CMS change of the tenant moves it on) and for at most max_age_ms (other replicas' changes). Bounded.
//   auto gen = cache.generation(tenant);            // before reading the database
//   cache.put(tenant, key, gen, body, etag);
//   if (auto hit = cache.get(tenant, key)) …        // on the I/O thread
//   cache.changed(tenant);                           // after a change committed
#pragma once
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace cdx::cms {

struct CachedAnswer {
  std::string body, etag;
  std::string header_lines;  // "ETag: …\r\nCache-Control: …\r\n", appended as they are
  std::string content_type;
  uint64_t generation = 0;
  int64_t expires_ms = 0;
};

class DeliveryCache {
 public:
  DeliveryCache(size_t max_entries, int64_t max_age_ms) : max_entries_(max_entries), max_age_ms_(max_age_ms) {}
  bool enabled() const { return max_entries_ > 0; }
  uint64_t generation(std::string_view tenant);
  void changed(std::string_view tenant);
  std::shared_ptr<const CachedAnswer> get(std::string_view tenant, const std::string& key);
  void put(std::string_view tenant, std::string key, uint64_t generation, CachedAnswer answer);

 private:
  static int64_t now_ms();
  size_t max_entries_;
  int64_t max_age_ms_;
  std::mutex mutex_;
  // Looked up by string_view: the hit path allocates nothing.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Map = std::unordered_map<std::string, uint64_t, Hash, std::equal_to<>>;
  Map generations_;
  std::unordered_map<std::string, std::shared_ptr<const CachedAnswer>, Hash, std::equal_to<>> answers_;
};

}  // namespace cdx::cms
