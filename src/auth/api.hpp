// What other modules may ask of auth. Blocking: call from a worker thread. In-process in the monolith;
// an HTTP client in the constellation.
//   auto admin = auth_api.create_first_admin(scope, "ops@acme.com", std::nullopt);
#pragma once
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "common/tenant_scope.hpp"

namespace cdx::auth {

struct FirstAdmin {
  nlohmann::json admin;    // the user object; with "initial_password" when one was generated
  std::string api_key;     // the full secret key, shown once
};

class Api {
 public:
  virtual ~Api() = default;
  // Creates the tenant's first ADMIN user and a secret API key.
  virtual FirstAdmin create_first_admin(const db::TenantScope& scope, const std::string& email,
                                        const std::optional<std::string>& password) = 0;
  // Creates a tenant user (demo seeding, imports); answers the user object. 409 on a taken email.
  virtual nlohmann::json create_user(const db::TenantScope& scope, const std::string& email, const std::string& name,
                                     const std::string& role, const std::string& password) = 0;
  // Drops cached credentials of a tenant whose status or plan changed (takes effect at once).
  virtual void tenant_changed(const std::string& tenant_id) = 0;
};

}  // namespace cdx::auth
