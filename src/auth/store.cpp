#include "auth/store.hpp"

#include "common/clock.hpp"

namespace cdx::auth {

namespace {

constexpr const char* kUserColumns =
    "id, tenant_id, email, name, role, status, password_hash, created_at, updated_at, last_login_at";
constexpr const char* kKeyColumns =
    "id, tenant_id, name, type, prefix, key_hash, scopes, created_by, expires_at, revoked_at, last_used_at, created_at";

User user_from(const db::Row& r) {
  User u;
  u.id = r.text(0);
  u.tenant_id = r.text(1);
  u.email = r.text(2);
  u.name = r.text(3);
  u.role = r.text(4);
  u.status = r.text(5);
  u.password_hash = r.text(6);
  u.created_at = r.text(7);
  u.updated_at = r.text(8);
  u.last_login_at = r.opt_text(9);
  return u;
}

ApiKey key_from(const db::Row& r) {
  ApiKey k;
  k.id = r.text(0);
  k.tenant_id = r.text(1);
  k.name = r.text(2);
  k.type = r.text(3);
  k.prefix = r.text(4);
  k.key_hash = r.text(5);
  auto scopes = nlohmann::json::parse(r.text(6), nullptr, false);
  if (scopes.is_array())
    for (const auto& s : scopes)
      if (s.is_string()) k.scopes.push_back(s.get<std::string>());
  k.created_by = r.opt_text(7);
  k.expires_at = r.opt_integer(8);
  k.revoked_at = r.opt_text(9);
  k.last_used_at = r.opt_text(10);
  k.created_at = r.text(11);
  return k;
}

}  // namespace

void Store::insert_user(const db::TenantScope& scope, const User& u) {
  db_->write(scope, [&](db::Tx& tx) {
    tx.query("INSERT INTO auth_db.users (id, tenant_id, email, email_normalized, name, role, status, password_hash, "
             "created_at, updated_at) VALUES ($1, $2, $3, lower($3), $4, $5, $6, $7, $8, $9)",
             {u.id, scope.tenant_id(), u.email, u.name, u.role, u.status, u.password_hash, u.created_at,
              u.updated_at});
  });
}

std::optional<User> Store::find_user_by_email(const db::TenantScope& scope, std::string_view email) {
  return db_->read(scope, [&](db::Tx& tx) -> std::optional<User> {
    auto res = tx.query(std::string("SELECT ") + kUserColumns +
                            " FROM auth_db.users WHERE tenant_id = $1 AND email_normalized = lower($2)",
                        {scope.tenant_id(), email});
    if (res.empty()) return std::nullopt;
    return user_from(res.rows[0]);
  });
}

std::optional<User> Store::find_user(const db::TenantScope& scope, std::string_view id) {
  return db_->read(scope, [&](db::Tx& tx) -> std::optional<User> {
    auto res = tx.query(std::string("SELECT ") + kUserColumns + " FROM auth_db.users WHERE tenant_id = $1 AND id = $2",
                        {scope.tenant_id(), id});
    if (res.empty()) return std::nullopt;
    return user_from(res.rows[0]);
  });
}

void Store::touch_user_login(const db::TenantScope& scope, const std::string& id) {
  db_->write(scope, [&](db::Tx& tx) {
    tx.query("UPDATE auth_db.users SET last_login_at = $3 WHERE tenant_id = $1 AND id = $2",
             {scope.tenant_id(), id, format_rfc3339(Clock::now())});
  });
}

int64_t Store::count_users(const db::TenantScope& scope) {
  return db_->read(scope, [&](db::Tx& tx) {
    return tx.query("SELECT COUNT(*) FROM auth_db.users WHERE tenant_id = $1", {scope.tenant_id()})
        .rows.at(0)
        .integer(0);
  });
}

void Store::insert_api_key(const db::TenantScope& scope, const ApiKey& k) {
  db_->write(scope, [&](db::Tx& tx) {
    tx.query(std::string("INSERT INTO auth_db.api_keys (") + kKeyColumns +
                 ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, $10)",
             {k.id, scope.tenant_id(), k.name, k.type, k.prefix, k.key_hash, nlohmann::json(k.scopes).dump(),
              k.created_by, k.expires_at, k.created_at});
    tx.query("INSERT INTO auth_db.api_key_index (prefix, tenant_id, key_id) VALUES ($1, $2, $3)",
             {k.prefix, scope.tenant_id(), k.id});
  });
}

std::optional<ApiKey> Store::find_api_key_by_prefix(const db::TenantScope& scope, std::string_view prefix) {
  return db_->read(scope, [&](db::Tx& tx) -> std::optional<ApiKey> {
    auto res = tx.query(std::string("SELECT ") + kKeyColumns +
                            " FROM auth_db.api_keys WHERE tenant_id = $1 AND prefix = $2",
                        {scope.tenant_id(), prefix});
    if (res.empty()) return std::nullopt;
    return key_from(res.rows[0]);
  });
}

std::vector<ApiKey> Store::list_api_keys(const db::TenantScope& scope, int limit,
                                        const std::optional<std::string>& after) {
  return db_->read(scope, [&](db::Tx& tx) {
    std::vector<ApiKey> out;
    auto res = tx.query(std::string("SELECT ") + kKeyColumns +
                            " FROM auth_db.api_keys WHERE tenant_id = $1 AND revoked_at IS NULL "
                            "AND (CAST($2 AS TEXT) IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
                        {scope.tenant_id(), after, static_cast<int64_t>(limit + 1)});
    for (const auto& r : res.rows) out.push_back(key_from(r));
    return out;
  });
}

bool Store::revoke_api_key(const db::TenantScope& scope, const std::string& id) {
  return db_->write(scope, [&](db::Tx& tx) {
    return tx.query("UPDATE auth_db.api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 "
                    "AND revoked_at IS NULL",
                    {scope.tenant_id(), id, format_rfc3339(Clock::now())})
               .affected > 0;
  });
}

std::optional<std::string> Store::platform_tenant_of_key_prefix(std::string_view prefix) {
  return db_->read_platform([&](db::Tx& tx) -> std::optional<std::string> {
    auto res = tx.query("SELECT tenant_id FROM auth_db.api_key_index WHERE prefix = $1", {prefix});
    if (res.empty()) return std::nullopt;
    return res.rows[0].text(0);
  });
}

void Store::purge_tenant(const db::TenantScope& scope) {
  db_->write(scope, [&](db::Tx& tx) {
    tx.query("DELETE FROM auth_db.api_keys WHERE tenant_id = $1", {scope.tenant_id()});
    tx.query("DELETE FROM auth_db.users WHERE tenant_id = $1", {scope.tenant_id()});
  });
  db_->write_platform([&](db::Tx& tx) {
    tx.query("DELETE FROM auth_db.api_key_index WHERE tenant_id = $1", {scope.tenant_id()});
  });
}

std::vector<SigningKey> Store::platform_signing_keys() {
  return db_->read_platform([&](db::Tx& tx) {
    std::vector<SigningKey> out;
    for (const auto& r :
         tx.query("SELECT kid, alg, private_pem, public_jwk, created_at, active FROM auth_db.signing_keys "
                  "WHERE retired_at IS NULL ORDER BY created_at")
             .rows) {
      SigningKey k;
      k.kid = r.text(0);
      k.alg = r.text(1);
      k.private_pem = r.text(2);
      k.public_jwk = r.text(3);
      k.created_at = r.integer(4);
      k.active = r.integer(5) != 0;
      out.push_back(std::move(k));
    }
    return out;
  });
}

void Store::platform_insert_signing_key(const SigningKey& k) {
  db_->write_platform([&](db::Tx& tx) {
    tx.query("UPDATE auth_db.signing_keys SET active = 0");
    tx.query("INSERT INTO auth_db.signing_keys (kid, alg, private_pem, public_jwk, created_at, active) "
             "VALUES ($1, $2, $3, $4, $5, 1)",
             {k.kid, k.alg, k.private_pem, k.public_jwk, k.created_at});
  });
}

}  // namespace cdx::auth
