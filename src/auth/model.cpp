#include "auth/model.hpp"

#include "common/clock.hpp"

namespace cdx::auth {

const std::vector<std::string>& publishable_scopes() {
  static const std::vector<std::string> k = {"cms:read", "analytics:ingest", "auth:login"};
  return k;
}

const std::vector<std::string>& secret_scopes() {
  static const std::vector<std::string> k = {
      "*",         "auth:read",    "auth:write",    "crm:read",       "crm:write",        "cms:read",
      "cms:write", "billing:read", "billing:write", "analytics:read", "analytics:ingest", "auth:login",
      "events:read", "webhooks:read", "webhooks:write"};
  return k;
}

const std::vector<std::string>& oidc_scopes() {
  static const std::vector<std::string> k = {"openid", "profile", "email"};
  return k;
}

const std::vector<std::string>& grant_types() {
  static const std::vector<std::string> k = {"authorization_code", "client_credentials", "refresh_token"};
  return k;
}

const std::vector<std::string>& api_scopes() {
  static const std::vector<std::string> k = [] {
    std::vector<std::string> out;
    for (const auto& s : secret_scopes())
      if (s != "*") out.push_back(s);
    return out;
  }();
  return k;
}

nlohmann::json to_json(const User& u) {
  return {{"id", u.id},
          {"tenant_id", u.tenant_id},
          {"email", u.email},
          {"name", u.name},
          {"role", u.role},
          {"status", u.status},
          {"created_at", u.created_at},
          {"updated_at", u.updated_at},
          {"last_login_at", u.last_login_at ? nlohmann::json(*u.last_login_at) : nlohmann::json(nullptr)}};
}

nlohmann::json to_json(const ApiKey& k) {
  auto ts = [](const std::optional<std::string>& v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  };
  nlohmann::json expires = nullptr;
  if (k.expires_at) expires = format_rfc3339(SysTime(std::chrono::seconds(*k.expires_at)));
  return {{"id", k.id},
          {"tenant_id", k.tenant_id},
          {"name", k.name},
          {"type", k.type},
          {"prefix", k.prefix},
          {"scopes", k.scopes},
          {"created_by", ts(k.created_by)},
          {"expires_at", expires},
          {"revoked_at", ts(k.revoked_at)},
          {"last_used_at", ts(k.last_used_at)},
          {"created_at", k.created_at}};
}

}  // namespace cdx::auth
