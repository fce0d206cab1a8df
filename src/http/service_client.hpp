// Blocking JSON calls from one service of the constellation to another's internal API, signed with a
// service assertion. Run it on a worker thread, never on an I/O thread. Keeps one keep-alive connection
// per thread. A transport failure throws Error(503); a problem answer is rethrown as the same Error, so a
// 409 or 422 from auth reaches the client of core unchanged.
//   ServiceClient auth(config.service_url("auth"), "core", key);
//   nlohmann::json user = auth.call("POST", "/internal/v1/tenants/" + id + "/users", body);
#pragma once
#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "http/assertion.hpp"

namespace cdx::http {

class ServiceClient {
 public:
  ServiceClient(std::string service, std::string base_url, std::string caller, const http::AssertionKey& key,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // The parsed JSON answer (null for 204). 404 answers nullopt when `missing_ok`; other problems throw.
  std::optional<nlohmann::json> call(std::string_view method, const std::string& path,
                                     const nlohmann::json* body = nullptr, bool missing_ok = false) const;

  const std::string& base_url() const { return base_url_; }

 private:
  std::string service_, base_url_, caller_;
  const http::AssertionKey& key_;
  std::chrono::milliseconds timeout_;
};

// GET <base_url>/health: whether the service answers "ok" (or "degraded") and its version. Blocking.
struct HealthAnswer {
  bool ok = false;
  std::string version;
  std::string error;
  nlohmann::json checks = nlohmann::json::object();  // the service's own dependency checks
};
HealthAnswer probe_health(const std::string& base_url, std::chrono::milliseconds timeout = std::chrono::seconds(2));

}  // namespace cdx::http
