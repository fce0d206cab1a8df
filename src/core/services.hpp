// The service registry: every service of the platform with its URL, polled for health about once a
// second, with a short status history. Served by GET /api/v1/services; a status change is logged.
//   registry.add("crm", "http://127.0.0.1:3004", [] { return http::probe_health("http://127.0.0.1:3004"); });
//   registry.poll();   // from the maintenance thread
#pragma once
#include <nlohmann/json.hpp>

#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace cdx::core {

struct Probe {
  bool ok = false;
  std::string version;
  std::string error;
};

class ServiceRegistry {
 public:
  static constexpr size_t kHistory = 60;

  void add(std::string name, std::string url, std::function<Probe()> check);
  void poll();  // blocking: runs every check
  nlohmann::json list() const;
  // Told of every status change ("service.down" / "service.up", with name, url, status, latency_ms, error,
  // checked_at) and, every kStatusEvery polls, of every service's status ("service.status"). Called on the
  // polling thread, outside the registry's lock.
  using Listener = std::function<void(std::string_view type, const nlohmann::json& data)>;
  void on_change(Listener fn) { listener_ = std::move(fn); }
  static constexpr uint64_t kStatusEvery = 5;

 private:
  struct Check {
    std::string status;  // up | down | unknown
    double latency_ms = 0;
    std::string checked_at;
  };
  struct Entry {
    std::string name, url, version, error;
    std::function<Probe()> check;
    Check last{"unknown", 0, ""};
    std::deque<Check> history;
  };
  mutable std::mutex mutex_;
  std::vector<Entry> entries_;
  Listener listener_;
  uint64_t polls_ = 0;
};

}  // namespace cdx::core
