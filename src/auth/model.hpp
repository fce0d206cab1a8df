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

struct UserFilter {
  std::optional<std::string> q, role, status;
  int limit = 50;
  std::optional<std::string> after_id;
};

struct UserPatch {
  std::optional<std::string> name, role, status, password_hash;
};

// One refresh token of a session family. Opaque to clients: "<tenant id>.<secret>"; stored hashed.
struct RefreshToken {
  std::string id, tenant_id, family_id, subject_id, subject_type, token_hash, scope, created_at;
  std::optional<std::string> client_id, used_at, revoked_at;
  int64_t expires_at = 0;  // unix seconds
};

enum class RotateOutcome { kRotated, kUnknown, kExpired, kRevoked, kReused };

struct AuditEvent {
  std::string action;      // login.succeeded, login.failed, session.family_revoked, api_key.created, …
  std::string actor_type;  // user | api_key | superadmin | anonymous | system
  std::optional<std::string> actor_id, target_type, target_id, ip;
  nlohmann::json details = nlohmann::json::object();
};

struct AuditFilter {
  std::optional<std::string> action, actor_id;
  int limit = 50;
  std::optional<std::string> after_id;
};

// The pseudo-tenant under which SUPERADMIN sessions are stored: not a UUID, so never a real tenant.
inline constexpr std::string_view kPlatformTenant = "platform";

// "cdx_sk_" or "cdx_pk_" + 8 lookup characters + 32 secret characters (base62, ~190 bits of entropy).
inline constexpr size_t kKeyTypeLen = 7;
inline constexpr size_t kKeyPrefixLen = kKeyTypeLen + 8;
inline constexpr size_t kKeyLen = kKeyPrefixLen + 32;

// Scopes a publishable key may hold: it is visible in browsers.
const std::vector<std::string>& publishable_scopes();
const std::vector<std::string>& secret_scopes();
// OAuth2 clients: the OIDC scopes, the grants, and the API scopes a client may hold (a key's, without "*").
const std::vector<std::string>& oidc_scopes();
const std::vector<std::string>& grant_types();
const std::vector<std::string>& api_scopes();

nlohmann::json to_json(const User& u);
nlohmann::json to_json(const ApiKey& k);  // prefix only, never the key or its hash

}  // namespace cdx::auth
