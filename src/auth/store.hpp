// Auth's SQL, and nowhere else: users, API keys, the key prefix index and signing keys in auth_db.
// Tenant data takes a TenantScope; the prefix index and signing keys are platform paths, named so.
//   auto user = store.find_user_by_email(scope, "ann@acme.com");
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/model.hpp"
#include "auth/tokens.hpp"
#include "db/database.hpp"

namespace cdx::auth {

class Store {
 public:
  explicit Store(std::shared_ptr<db::Database> db) : db_(std::move(db)) {}

  void insert_user(const db::TenantScope& scope, const User& u);  // UniqueViolation on a taken email
  // Check and insert in one serialised transaction; false when the tenant already has max_users.
  bool insert_user_within_quota(const db::TenantScope& scope, const User& u, int64_t max_users);
  // Runs guard(before, active_admins) inside the write transaction, serialised per tenant, so rules
  // such as "keep one active ADMIN" hold under concurrent requests; guard throws to refuse.
  std::optional<User> find_user_by_email(const db::TenantScope& scope, std::string_view email);
  std::optional<User> find_user(const db::TenantScope& scope, std::string_view id);
  std::vector<User> list_users(const db::TenantScope& scope, const UserFilter& f);  // newest first, limit + 1
  using UserGuard = std::function<void(const User& before, int64_t active_admins)>;
  std::optional<User> update_user(const db::TenantScope& scope, const std::string& id, const UserPatch& patch,
                                  const UserGuard& guard = nullptr);
  bool delete_user(const db::TenantScope& scope, const std::string& id, const UserGuard& guard = nullptr);
  // True while the session family has a refresh token that is not revoked.
  bool session_active(const db::TenantScope& scope, const std::string& family_id);

  // A new session; with `login`, also the user's last_login_at and the login's audit row, atomically.
  void insert_session(const db::TenantScope& scope, const RefreshToken& t, const AuditEvent* login);
  // Spends the presented token and stores its replacement in one transaction. Presenting a spent token
  // revokes its whole family (RFC 9700 §4.14); `spent` receives the presented row when one was found.
  RotateOutcome rotate_refresh_token(const db::TenantScope& scope, const std::string& presented_hash,
                                     const RefreshToken& replacement, int64_t now, RefreshToken& spent);
  std::optional<RefreshToken> find_refresh_token(const db::TenantScope& scope, const std::string& hash);
  int64_t revoke_refresh_family(const db::TenantScope& scope, const std::string& family_id);
  int64_t revoke_subject_sessions(const db::TenantScope& scope, const std::string& subject_id);

  void insert_password_reset(const db::TenantScope& scope, const std::string& user_id, const std::string& token_hash,
                             int64_t expires_at);
  // Single use: answers the user id and marks the reset used, or nullopt when unknown, used or expired.
  std::optional<std::string> consume_password_reset(const db::TenantScope& scope, const std::string& token_hash,
                                                    int64_t now);

  void append_audit(const db::TenantScope& scope, const AuditEvent& e);
  nlohmann::json list_audit(const db::TenantScope& scope, const AuditFilter& f);  // array, newest first, limit + 1

  void touch_api_keys_used(const db::TenantScope& scope, const std::vector<std::pair<std::string, std::string>>& id_time);

  // Writes the key and its prefix index entry in one transaction.
  void insert_api_key(const db::TenantScope& scope, const ApiKey& k);
  bool insert_api_key_within_quota(const db::TenantScope& scope, const ApiKey& k, int64_t max_keys);
  std::optional<ApiKey> find_api_key_by_prefix(const db::TenantScope& scope, std::string_view prefix);
  std::vector<ApiKey> list_api_keys(const db::TenantScope& scope, int limit, const std::optional<std::string>& after);
  bool revoke_api_key(const db::TenantScope& scope, const std::string& id);  // false when absent or revoked
  // Platform path: which tenant a key prefix belongs to (the key itself stays behind RLS).
  std::optional<std::string> platform_tenant_of_key_prefix(std::string_view prefix);

  void purge_tenant(const db::TenantScope& scope);

  std::vector<SigningKey> platform_signing_keys();
  void platform_insert_signing_key(const SigningKey& k);  // and deactivates the others

 private:
  static void append_audit_row(db::Tx& tx, const db::TenantScope& scope, const AuditEvent& e);
  std::shared_ptr<db::Database> db_;
};

}  // namespace cdx::auth
