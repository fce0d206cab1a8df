// Core's types and rules: tenants, plans and superadmins.
//   if (auto why = slug_problem(slug)) throw Error::validation({{"slug", *why}});
#pragma once
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace cdx::core {

struct Plan {
  std::string id;
  std::string key;
  std::string name;
  int64_t rate_limit_per_minute = 6000;
  int64_t max_users = 100;
  int64_t max_api_keys = 20;
  int64_t max_upload_mb = 25;
  std::vector<std::string> modules;
  std::string created_at, updated_at;
};

struct Tenant {
  std::string id;
  std::string slug;
  std::string name;
  std::string status = "active";  // active | suspended
  std::string plan = "free";
  nlohmann::json settings = nlohmann::json::object();
  std::string created_at, updated_at;
};

struct Superadmin {
  std::string id;
  std::string username;
  std::string password_hash;
};

inline const std::vector<std::string>& all_modules() {
  static const std::vector<std::string> kModules = {"auth", "crm", "cms", "billing", "analytics"};
  return kModules;
}

// Slugs and plan keys: 3–63 of a-z 0-9 '-', starting and ending alphanumeric, not reserved.
std::optional<std::string> slug_problem(const std::string& slug);
std::optional<std::string> plan_key_problem(const std::string& key);

nlohmann::json to_json(const Tenant& t);
nlohmann::json to_json(const Plan& p);
// The inverses, for a service that reads core's answers over HTTP. Throw nlohmann::json::exception.
// Could name a tenant (an id or a slug): short lower-case ASCII. Anything else is never looked up.
bool plausible_tenant_key(std::string_view key);
Tenant tenant_from_json(const nlohmann::json& j);
Plan plan_from_json(const nlohmann::json& j);

}  // namespace cdx::core
