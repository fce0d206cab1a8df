#include "auth/remote_api.hpp"

#include "common/error.hpp"
#include "common/log.hpp"

namespace cdx::auth {

FirstAdmin RemoteApi::create_first_admin(const db::TenantScope& scope, const std::string& email,
                                         const std::optional<std::string>& password) {
  nlohmann::json body = {{"email", email}};
  if (password) body["password"] = *password;
  auto j = client_.call("POST", "/internal/v1/tenants/" + scope.tenant_id() + "/first-admin", &body);
  try {
    return FirstAdmin{j->at("admin"), j->at("api_key").get<std::string>()};
  } catch (const nlohmann::json::exception&) {
    throw Error(Code::kBadGateway, "The auth service answered a malformed first admin.");
  }
}

nlohmann::json RemoteApi::create_user(const db::TenantScope& scope, const std::string& email,
                                      const std::string& name, const std::string& role,
                                      const std::string& password) {
  const nlohmann::json body = {{"email", email}, {"name", name}, {"role", role}, {"password", password}};
  return *client_.call("POST", "/internal/v1/tenants/" + scope.tenant_id() + "/users", &body);
}

// Best effort: the change is committed already, so failing the caller's request here would report a
// failure that did not happen. Auth's caches expire within their TTL anyway.
void RemoteApi::tenant_changed(const std::string& tenant_id) {
  const nlohmann::json body = {{"tenant_id", tenant_id}};
  try {
    client_.call("POST", "/internal/v1/invalidate", &body);
  } catch (const std::exception& e) {
    log::warn("cannot tell the auth service about a tenant change; its caches expire within seconds",
              {{"tenant_id", tenant_id}, {"error", e.what()}});
  }
}

}  // namespace cdx::auth
