// auth::Api over HTTP: what core asks of the auth service in a constellation (a tenant's first admin, a
// seeded user, a tenant change). Blocking; call it from a worker.
//   auth::RemoteApi auth(service_url(config, "auth"), "core", key);
#pragma once
#include "auth/api.hpp"
#include "http/service_client.hpp"

namespace cdx::auth {

class RemoteApi final : public Api {
 public:
  RemoteApi(std::string base_url, std::string caller, const http::AssertionKey& key)
      : client_("auth", std::move(base_url), std::move(caller), key) {}
  FirstAdmin create_first_admin(const db::TenantScope& scope, const std::string& email,
                                const std::optional<std::string>& password) override;
  nlohmann::json create_user(const db::TenantScope& scope, const std::string& email, const std::string& name,
                             const std::string& role, const std::string& password) override;
  void tenant_changed(const std::string& tenant_id) override;

 private:
  http::ServiceClient client_;
};

}  // namespace cdx::auth
