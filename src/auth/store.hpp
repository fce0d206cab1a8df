// Auth's SQL beside the kit's: credential lookups, sessions, resets, the audit log, the key prefix index and
// signing keys in auth_db (users, API keys and clients are written by the kit, resources.cpp).
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
#include "common/key_encryption.hpp"
#include "db/database.hpp"

namespace cdx::auth {

class Store {
 public:
  explicit Store(std::shared_ptr<db::Database> db) : db_(std::move(db)) {}

  std::optional<User> find_user_by_email(const db::TenantScope& scope, std::string_view email);
  std::optional<User> find_user(const db::TenantScope& scope, std::string_view id);
  // A password reset: the new hash; false when the user is gone.
  bool set_password_hash(const db::TenantScope& scope, const std::string& user_id, const std::string& hash);

  // Inside a write transaction the kit holds (the resources' hooks, resources.cpp).
  static int64_t count_users(db::Tx& tx, const db::TenantScope& scope);
  static int64_t count_active_admins(db::Tx& tx, const db::TenantScope& scope);
  static int64_t count_active_api_keys(db::Tx& tx, const db::TenantScope& scope);
  // The tenant overview's recount (Module::aggregate_counts): users, and API keys not revoked.
  nlohmann::json aggregate_counts(const db::TenantScope& scope);
  static int64_t revoke_subject_sessions(db::Tx& tx, const db::TenantScope& scope,
                                         const std::string& subject_id);
  // The platform index from a key's prefix to its tenant, written with the key.
  static void index_api_key(db::Tx& tx, const db::TenantScope& scope, const std::string& prefix,
                            const std::string& key_id);
  static void append_audit(db::Tx& tx, const db::TenantScope& scope, const AuditEvent& e);

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

  void insert_password_reset(const db::TenantScope& scope, const std::string& user_id,
                             const std::string& token_hash, int64_t expires_at);
  // Single use: answers the user id and marks the reset used, or nullopt when unknown, used or expired.
  // Marks every outstanding reset link of the user used (a reset, or any new password, spends them all).
  static void spend_password_resets(db::Tx& tx, const db::TenantScope& scope, const std::string& user_id);
  std::optional<std::string> consume_password_reset(const db::TenantScope& scope,
                                                    const std::string& token_hash, int64_t now);

  void append_audit(const db::TenantScope& scope, const AuditEvent& e);
  nlohmann::json list_audit(const db::TenantScope& scope,
                            const AuditFilter& f);  // array, newest first, limit + 1

  void touch_api_keys_used(const db::TenantScope& scope,
                           const std::vector<std::pair<std::string, std::string>>& id_time);

  std::optional<ApiKey> find_api_key_by_prefix(const db::TenantScope& scope, std::string_view prefix);
  // Platform path: which tenant a key prefix belongs to (the key itself stays behind RLS).
  std::optional<std::string> platform_tenant_of_key_prefix(std::string_view prefix);

  void purge_tenant(const db::TenantScope& scope);

  // Platform: the signing keys, without retired ones unless asked. private_pem is left empty: the private
  // key is in `sealed` (sealed.kek_id empty for a row of an earlier version, whose text is the plain PEM).
  struct StoredKey {
    SigningKey key;
    Sealed sealed;
    bool retired = false;
  };
  std::vector<StoredKey> platform_signing_keys(bool with_retired = false);
  // Stores a new active key (its private key sealed) and deactivates the others.
  void platform_insert_signing_key(const SigningKey& k, const Sealed& sealed);
  // Replaces a key's sealed private key if the row still holds `was` (another replica may have re-sealed
  // it first). True when this call replaced it.
  bool platform_reseal_signing_key(const std::string& kid, const Sealed& was, const Sealed& now);
  db::Database& database() { return *db_; }

 private:
  std::shared_ptr<db::Database> db_;
};

}  // namespace cdx::auth
