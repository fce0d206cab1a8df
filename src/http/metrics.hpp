// Prometheus metrics for HTTP: request counts and latency histograms by route and status, recorded
// lock-free on the request path, rendered as text exposition on GET /metrics.
//   metrics.record(route_id, 200, 0.00042);
#pragma once
#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "http/router.hpp"

namespace cdx::http {

class Metrics {
 public:
  static constexpr std::array<double, 13> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,    0.25,  0.5,    1.0,   2.5,  5.0};
  explicit Metrics(const Router& router);
  ~Metrics();

  void record(int route_id, int status, double seconds);
  void connection_opened() { connections_.fetch_add(1, std::memory_order_relaxed); }
  void connection_closed() { connections_.fetch_sub(1, std::memory_order_relaxed); }
  int64_t open_connections() const { return connections_.load(std::memory_order_relaxed); }
  void connection_refused() { refused_.fetch_add(1, std::memory_order_relaxed); }

  // Appends gauges owned elsewhere (database pools, worker queue) at render time.
  void add_collector(std::function<void(std::string&)> collector) {
    collectors_.push_back(std::move(collector));
  }
  std::string render() const;

 private:
  struct Series;
  const Router& router_;
  std::vector<std::unique_ptr<Series>> series_;  // per route, plus one for unmatched requests
  std::atomic<int64_t> connections_{0};
  std::atomic<int64_t> refused_{0};
  std::vector<std::function<void(std::string&)>> collectors_;
};

}  // namespace cdx::http
