// Auth's types and rules: tenant users, API keys and their JSON shapes.
//   nlohmann::json j = to_json(user);   // never includes the password hash
#pragma once
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "common/principal.hpp"

namespace cdx::auth {

struct User {
  std::string id, tenant_id, email, name, role, status, password_hash, created_at, updated_at;
  std::optional<std::string> last_login_at;
};

struct ApiKey {
  std::string id, tenant_id, name, type, prefix, key_hash;
  std::vector<std::string> scopes;
  std::optional<std::string> created_by;
  std::optional<int64_t> expires_at;  // unix seconds
  std::optional<std::string> revoked_at, last_used_at;
  std::string created_at;
};

// "cdx_sk_" or "cdx_pk_" + 8 lookup characters + 32 secret characters (base62, ~190 bits of entropy).
inline constexpr size_t kKeyTypeLen = 7;
inline constexpr size_t kKeyPrefixLen = kKeyTypeLen + 8;
inline constexpr size_t kKeyLen = kKeyPrefixLen + 32;

// Scopes a publishable key may hold: it is visible in browsers.
const std::vector<std::string>& publishable_scopes();
const std::vector<std::string>& secret_scopes();

nlohmann::json to_json(const User& u);
nlohmann::json to_json(const ApiKey& k);  // prefix only, never the key or its hash

}  // namespace cdx::auth
