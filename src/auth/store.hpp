// Auth's SQL, and nowhere else: users, API keys, the key prefix index and signing keys in auth_db.
// Tenant data takes a TenantScope; the prefix index and signing keys are platform paths, named so.
//   auto user = store.find_user_by_email(scope, "ann@acme.com");
#pragma once
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
  std::optional<User> find_user_by_email(const db::TenantScope& scope, std::string_view email);
  std::optional<User> find_user(const db::TenantScope& scope, std::string_view id);
  void touch_user_login(const db::TenantScope& scope, const std::string& id);
  int64_t count_users(const db::TenantScope& scope);

  // Writes the key and its prefix index entry in one transaction.
  void insert_api_key(const db::TenantScope& scope, const ApiKey& k);
  std::optional<ApiKey> find_api_key_by_prefix(const db::TenantScope& scope, std::string_view prefix);
  std::vector<ApiKey> list_api_keys(const db::TenantScope& scope, int limit, const std::optional<std::string>& after);
  bool revoke_api_key(const db::TenantScope& scope, const std::string& id);  // false when absent or revoked
  // Platform path: which tenant a key prefix belongs to (the key itself stays behind RLS).
  std::optional<std::string> platform_tenant_of_key_prefix(std::string_view prefix);

  void purge_tenant(const db::TenantScope& scope);

  std::vector<SigningKey> platform_signing_keys();
  void platform_insert_signing_key(const SigningKey& k);  // and deactivates the others

 private:
  std::shared_ptr<db::Database> db_;
};

}  // namespace cdx::auth
