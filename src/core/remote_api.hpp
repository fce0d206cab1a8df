// core::Api over HTTP: what the auth service and the gateway ask of the core service in the
// constellation topology. Blocking; call it from a worker.
//   core::RemoteApi core(service_url(config, "core"), "auth", key);
#pragma once
#include "core/api.hpp"
#include "http/service_client.hpp"

namespace cdx::core {

class RemoteApi final : public Api {
 public:
  RemoteApi(std::string base_url, std::string caller, const http::AssertionKey& key)
      : client_("core", std::move(base_url), std::move(caller), key) {}
  std::optional<TenantInfo> find_tenant(std::string_view id_or_slug) override;
  std::optional<SuperadminIdentity> verify_superadmin(std::string_view username, std::string_view password) override;
  std::optional<SuperadminIdentity> find_superadmin(std::string_view id) override;
  void record_events(const std::vector<db::OutboxEvent>& events) override;

 private:
  http::ServiceClient client_;
};

}  // namespace cdx::core
