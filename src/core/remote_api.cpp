#include "core/remote_api.hpp"

#include "common/error.hpp"
#include "common/ids.hpp"

namespace cdx::core {

namespace {

SuperadminIdentity identity_from(const nlohmann::json& j) {
  return {j.at("id").get<std::string>(), j.at("username").get<std::string>()};
}

}  // namespace

nlohmann::json to_json(const TenantInfo& info) { return {{"tenant", to_json(info.tenant)}, {"plan", to_json(info.plan)}}; }

TenantInfo tenant_info_from_json(const nlohmann::json& j) {
  try {
    return {tenant_from_json(j.at("tenant")), plan_from_json(j.at("plan"))};
  } catch (const nlohmann::json::exception& e) {
    throw Error(Code::kBadGateway, std::string("The core service answered a malformed tenant: ") + e.what());
  }
}

std::optional<TenantInfo> RemoteApi::find_tenant(std::string_view id_or_slug) {
  if (!plausible_tenant_key(id_or_slug)) return std::nullopt;
  auto j = client_.call("GET", "/internal/v1/tenants/" + std::string(id_or_slug), nullptr, true);
  if (!j) return std::nullopt;
  return tenant_info_from_json(*j);
}

std::optional<SuperadminIdentity> RemoteApi::verify_superadmin(std::string_view username, std::string_view password) {
  const nlohmann::json body = {{"username", username}, {"password", password}};
  auto j = client_.call("POST", "/internal/v1/superadmins/verify", &body, true);
  if (!j) return std::nullopt;
  return identity_from(*j);
}

std::optional<SuperadminIdentity> RemoteApi::find_superadmin(std::string_view id) {
  if (!url_safe_id(id)) return std::nullopt;
  auto j = client_.call("GET", "/internal/v1/superadmins/" + std::string(id), nullptr, true);
  if (!j) return std::nullopt;
  return identity_from(*j);
}

}  // namespace cdx::core
