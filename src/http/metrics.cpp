#include "http/metrics.hpp"

#include <fmt/format.h>

#include "common/access_log.hpp"
#include "common/log.hpp"

namespace cdx::http {

namespace {
constexpr int kStatuses[] = {200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 405,
                             408, 409, 413, 415, 422, 429, 431, 500, 502, 503, 504};
constexpr size_t kStatusSlots = std::size(kStatuses) + 1;  // last slot: any other status

size_t status_slot(int status) {
  for (size_t i = 0; i < std::size(kStatuses); ++i)
    if (kStatuses[i] == status) return i;
  return kStatusSlots - 1;
}
}  // namespace

struct Metrics::Series {
  struct Cell {
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> sum_ns{0};
    std::array<std::atomic<uint64_t>, kBuckets.size()> buckets{};
  };
  std::array<Cell, kStatusSlots> cells;
};

Metrics::Metrics(const Router& router) : router_(router) {
  for (size_t i = 0; i <= router.routes().size(); ++i) series_.push_back(std::make_unique<Series>());
}
Metrics::~Metrics() = default;

void Metrics::record(int route_id, int status, double seconds) {
  const size_t r =
      route_id >= 0 && static_cast<size_t>(route_id) < series_.size() - 1 ? route_id : series_.size() - 1;
  auto& cell = series_[r]->cells[status_slot(status)];
  cell.count.fetch_add(1, std::memory_order_relaxed);
  cell.sum_ns.fetch_add(static_cast<uint64_t>(seconds * 1e9), std::memory_order_relaxed);
  for (size_t b = 0; b < kBuckets.size(); ++b) {
    if (seconds <= kBuckets[b]) {
      cell.buckets[b].fetch_add(1, std::memory_order_relaxed);  // cumulated at render time
      break;
    }
  }
}

std::string Metrics::render() const {
  std::string out;
  out += "# HELP cdx_http_requests_total HTTP requests answered, by route and status.\n";
  out += "# TYPE cdx_http_requests_total counter\n";
  auto label = [&](size_t r) -> std::string {
    if (r == series_.size() - 1) return "method=\"\",route=\"unmatched\"";
    const Route& route = *router_.routes()[r];
    return fmt::format("method=\"{}\",route=\"{}\"", method_name(route.method), route.pattern);
  };
  auto status_label = [](size_t s) {
    return s < std::size(kStatuses) ? std::to_string(kStatuses[s]) : "other";
  };
  for (size_t r = 0; r < series_.size(); ++r)
    for (size_t s = 0; s < kStatusSlots; ++s)
      if (uint64_t n = series_[r]->cells[s].count.load(std::memory_order_relaxed))
        out += fmt::format("cdx_http_requests_total{{{},status=\"{}\"}} {}\n", label(r), status_label(s), n);

  out +=
      "# HELP cdx_http_request_duration_seconds Time from the request's first byte to its answer being "
      "queued, by route and status.\n";
  out += "# TYPE cdx_http_request_duration_seconds histogram\n";
  for (size_t r = 0; r < series_.size(); ++r) {
    for (size_t s = 0; s < kStatusSlots; ++s) {
      const auto& cell = series_[r]->cells[s];
      const uint64_t n = cell.count.load(std::memory_order_relaxed);
      if (!n) continue;
      const std::string l = fmt::format("{},status=\"{}\"", label(r), status_label(s));
      uint64_t cumulative = 0;
      for (size_t b = 0; b < kBuckets.size(); ++b) {
        cumulative += cell.buckets[b].load(std::memory_order_relaxed);
        out += fmt::format("cdx_http_request_duration_seconds_bucket{{{},le=\"{}\"}} {}\n", l, kBuckets[b],
                           cumulative);
      }
      out += fmt::format("cdx_http_request_duration_seconds_bucket{{{},le=\"+Inf\"}} {}\n", l, n);
      out += fmt::format("cdx_http_request_duration_seconds_sum{{{}}} {:.9f}\n", l,
                         cell.sum_ns.load(std::memory_order_relaxed) / 1e9);
      out += fmt::format("cdx_http_request_duration_seconds_count{{{}}} {}\n", l, n);
    }
  }
  out +=
      "# HELP cdx_http_connections_open Open client connections.\n# TYPE cdx_http_connections_open gauge\n";
  out += fmt::format("cdx_http_connections_open {}\n", open_connections());
  out +=
      "# HELP cdx_http_connections_refused_total Connections answered 503 and closed at a connection cap.\n"
      "# TYPE cdx_http_connections_refused_total counter\n";
  out += fmt::format("cdx_http_connections_refused_total {}\n", refused_.load(std::memory_order_relaxed));
  if (const log::FileSink* access = log::access()) {
    out +=
        "# HELP cdx_access_log_failed_writes_total Access-log blocks lost to write errors (full disk, closed "
        "pipe).\n"
        "# TYPE cdx_access_log_failed_writes_total counter\n";
    out += fmt::format("cdx_access_log_failed_writes_total {}\n", access->failed_blocks());
  }
  for (const auto& c : collectors_) c(out);
  return out;
}

}  // namespace cdx::http
