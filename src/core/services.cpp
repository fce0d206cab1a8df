#include "core/services.hpp"

#include <chrono>
#include <cmath>

#include "common/clock.hpp"
#include "common/log.hpp"

namespace cdx::core {

void ServiceRegistry::add(std::string name, std::string url, std::function<Probe()> check) {
  std::lock_guard lock(mutex_);
  Entry e;
  e.name = std::move(name);
  e.url = std::move(url);
  e.check = std::move(check);
  entries_.push_back(std::move(e));
}

void ServiceRegistry::poll() {
  std::vector<std::pair<std::string, std::function<Probe()>>> checks;
  {
    std::lock_guard lock(mutex_);
    for (const auto& e : entries_) checks.emplace_back(e.name, e.check);
  }
  for (size_t i = 0; i < checks.size(); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    Probe p;
    try {
      p = checks[i].second();
    } catch (const std::exception& ex) {
      p.ok = false;
      p.error = ex.what();
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    Check c{p.ok ? "up" : "down", std::round(ms * 100) / 100, format_rfc3339(Clock::now())};
    nlohmann::json changed;
    {
      std::lock_guard lock(mutex_);
      Entry& e = entries_[i];
      // A service first seen up is no news; first seen down is.
      if (e.last.status != c.status && (e.last.status != "unknown" || !p.ok)) {
        (p.ok ? log::info : log::warn)("service status changed",
                                       {{"service", e.name}, {"status", c.status}, {"error", p.error}});
        changed = {{"name", e.name},
                   {"url", e.url},
                   {"status", c.status},
                   {"latency_ms", c.latency_ms},
                   {"error", p.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.error)},
                   {"checked_at", c.checked_at}};
      }
      if (!p.version.empty()) e.version = p.version;
      e.error = p.error;
      e.last = c;
      e.history.push_front(c);
      if (e.history.size() > kHistory) e.history.pop_back();
    }
    if (listener_ && !changed.is_null()) listener_(p.ok ? "service.up" : "service.down", changed);
  }
  if (listener_ && ++polls_ % kStatusEvery == 0) {
    nlohmann::json services = nlohmann::json::array();
    {
      std::lock_guard lock(mutex_);
      for (const auto& e : entries_)
        services.push_back({{"name", e.name},
                            {"status", e.last.status},
                            {"latency_ms", e.last.latency_ms},
                            {"checked_at", e.last.checked_at}});
    }
    listener_("service.status", {{"services", std::move(services)}});
  }
}

nlohmann::json ServiceRegistry::list() const {
  std::lock_guard lock(mutex_);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : entries_) {
    nlohmann::json history = nlohmann::json::array();
    for (const auto& c : e.history)
      history.push_back({{"status", c.status}, {"latency_ms", c.latency_ms}, {"checked_at", c.checked_at}});
    out.push_back({{"name", e.name},
                   {"url", e.url},
                   {"status", e.last.status},
                   {"latency_ms", e.last.latency_ms},
                   {"last_check", e.last.checked_at.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.last.checked_at)},
                   {"version", e.version.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.version)},
                   {"error", e.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.error)},
                   {"history", history}});
  }
  return out;
}

}  // namespace cdx::core
