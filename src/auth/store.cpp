#include "auth/store.hpp"

#include "common/clock.hpp"
#include "common/ids.hpp"

namespace cdx::auth {

namespace {

constexpr const char* kUserColumns =
    "id, tenant_id, email, name, role, status, password_hash, created_at, updated_at, last_login_at";
constexpr const char* kKeyColumns =
    "id, tenant_id, name, type, prefix, key_hash, scopes, created_by, expires_at, revoked_at, last_used_at, "
    "created_at";

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
  if (auto exp = r.opt_text(8))  // RFC 3339 (the kit's datetime)
    if (auto t = parse_rfc3339(*exp))
      k.expires_at = std::chrono::duration_cast<std::chrono::seconds>(t->time_since_epoch()).count();
  k.revoked_at = r.opt_text(9);
  k.last_used_at = r.opt_text(10);
  k.created_at = r.text(11);
  return k;
}

}  // namespace

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
    auto res = tx.query(
        std::string("SELECT ") + kUserColumns + " FROM auth_db.users WHERE tenant_id = $1 AND id = $2",
        {scope.tenant_id(), id});
    if (res.empty()) return std::nullopt;
    return user_from(res.rows[0]);
  });
}

bool Store::set_password_hash(const db::TenantScope& scope, const std::string& user_id,
                              const std::string& hash) {
  return db_->write(scope, [&](db::Tx& tx) {
    return tx.query(
                 "UPDATE auth_db.users SET password_hash = $3, updated_at = $4 WHERE tenant_id = $1 AND id = "
                 "$2",
                 {scope.tenant_id(), user_id, hash, format_rfc3339(Clock::now())})
               .affected > 0;
  });
}

int64_t Store::count_users(db::Tx& tx, const db::TenantScope& scope) {
  return tx.query("SELECT COUNT(*) FROM auth_db.users WHERE tenant_id = $1", {scope.tenant_id()})
      .rows.at(0)
      .integer(0);
}

int64_t Store::count_active_admins(db::Tx& tx, const db::TenantScope& scope) {
  return tx
      .query(
          "SELECT COUNT(*) FROM auth_db.users WHERE tenant_id = $1 AND role = 'ADMIN' AND status = 'active'",
          {scope.tenant_id()})
      .rows.at(0)
      .integer(0);
}

nlohmann::json Store::aggregate_counts(const db::TenantScope& scope) {
  return db_->read(scope, [&](db::Tx& tx) {
    return nlohmann::json{{"users", count_users(tx, scope)}, {"api_keys", count_active_api_keys(tx, scope)}};
  });
}

int64_t Store::count_active_api_keys(db::Tx& tx, const db::TenantScope& scope) {
  return tx
      .query("SELECT COUNT(*) FROM auth_db.api_keys WHERE tenant_id = $1 AND revoked_at IS NULL",
             {scope.tenant_id()})
      .rows.at(0)
      .integer(0);
}

int64_t Store::revoke_subject_sessions(db::Tx& tx, const db::TenantScope& scope,
                                       const std::string& subject_id) {
  return tx
      .query(
          "UPDATE auth_db.refresh_tokens SET revoked_at = $3 WHERE tenant_id = $1 AND subject_id = $2 "
          "AND revoked_at IS NULL",
          {scope.tenant_id(), subject_id, format_rfc3339(Clock::now())})
      .affected;
}

void Store::index_api_key(db::Tx& tx, const db::TenantScope& scope, const std::string& prefix,
                          const std::string& key_id) {
  tx.query("INSERT INTO auth_db.api_key_index (prefix, tenant_id, key_id) VALUES ($1, $2, $3)",
           {prefix, scope.tenant_id(), key_id});
}

bool Store::session_active(const db::TenantScope& scope, const std::string& family_id) {
  return db_->read(scope, [&](db::Tx& tx) {
    return !tx.query(
                  "SELECT 1 FROM auth_db.refresh_tokens WHERE tenant_id = $1 AND family_id = $2 "
                  "AND revoked_at IS NULL LIMIT 1",
                  {scope.tenant_id(), family_id})
                .empty();
  });
}

namespace {
constexpr const char* kRefreshColumns =
    "id, tenant_id, family_id, subject_id, subject_type, token_hash, client_id, scope, expires_at, used_at, "
    "revoked_at, created_at";

RefreshToken refresh_from(const db::Row& r) {
  RefreshToken t;
  t.id = r.text(0);
  t.tenant_id = r.text(1);
  t.family_id = r.text(2);
  t.subject_id = r.text(3);
  t.subject_type = r.text(4);
  t.token_hash = r.text(5);
  t.client_id = r.opt_text(6);
  t.scope = r.text(7);
  t.expires_at = r.integer(8);
  t.used_at = r.opt_text(9);
  t.revoked_at = r.opt_text(10);
  t.created_at = r.text(11);
  return t;
}

void insert_refresh(db::Tx& tx, const RefreshToken& t) {
  tx.query(std::string("INSERT INTO auth_db.refresh_tokens (") + kRefreshColumns +
               ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, $10)",
           {t.id, t.tenant_id, t.family_id, t.subject_id, t.subject_type, t.token_hash, t.client_id, t.scope,
            t.expires_at, t.created_at});
}
}  // namespace

void Store::insert_session(const db::TenantScope& scope, const RefreshToken& t, const AuditEvent* login) {
  db_->write(scope, [&](db::Tx& tx) {
    insert_refresh(tx, t);
    if (!login) return;
    const std::string now = format_rfc3339(Clock::now());
    tx.query("UPDATE auth_db.users SET last_login_at = $3 WHERE tenant_id = $1 AND id = $2",
             {scope.tenant_id(), t.subject_id, now});
    append_audit(tx, scope, *login);
  });
}

RotateOutcome Store::rotate_refresh_token(const db::TenantScope& scope, const std::string& presented_hash,
                                          const RefreshToken& replacement, int64_t now, RefreshToken& spent) {
  return db_->write(scope, [&](db::Tx& tx) {
    auto res = tx.query(std::string("SELECT ") + kRefreshColumns +
                            " FROM auth_db.refresh_tokens WHERE tenant_id = $1 AND token_hash = $2",
                        {scope.tenant_id(), presented_hash});
    if (res.empty()) return RotateOutcome::kUnknown;
    spent = refresh_from(res.rows[0]);
    const std::string at = format_rfc3339(Clock::now());
    if (spent.revoked_at) return RotateOutcome::kRevoked;
    if (spent.used_at) {
      tx.query(
          "UPDATE auth_db.refresh_tokens SET revoked_at = $3 WHERE tenant_id = $1 AND family_id = $2 "
          "AND revoked_at IS NULL",
          {scope.tenant_id(), spent.family_id, at});
      return RotateOutcome::kReused;
    }
    if (spent.expires_at <= now) return RotateOutcome::kExpired;
    // Conditional update: of two concurrent refreshes with one token, exactly one wins.
    if (tx.query("UPDATE auth_db.refresh_tokens SET used_at = $3 WHERE tenant_id = $1 AND id = $2 "
                 "AND used_at IS NULL AND revoked_at IS NULL",
                 {scope.tenant_id(), spent.id, at})
            .affected != 1)
      return RotateOutcome::kReused;
    RefreshToken next = replacement;
    next.family_id = spent.family_id;
    next.subject_id = spent.subject_id;
    next.subject_type = spent.subject_type;
    next.client_id = spent.client_id;
    next.scope = spent.scope;
    insert_refresh(tx, next);
    return RotateOutcome::kRotated;
  });
}

std::optional<RefreshToken> Store::find_refresh_token(const db::TenantScope& scope, const std::string& hash) {
  return db_->read(scope, [&](db::Tx& tx) -> std::optional<RefreshToken> {
    auto res = tx.query(std::string("SELECT ") + kRefreshColumns +
                            " FROM auth_db.refresh_tokens WHERE tenant_id = $1 AND token_hash = $2",
                        {scope.tenant_id(), hash});
    if (res.empty()) return std::nullopt;
    return refresh_from(res.rows[0]);
  });
}

int64_t Store::revoke_refresh_family(const db::TenantScope& scope, const std::string& family_id) {
  return db_->write(scope, [&](db::Tx& tx) {
    return tx
        .query(
            "UPDATE auth_db.refresh_tokens SET revoked_at = $3 WHERE tenant_id = $1 AND family_id = $2 "
            "AND revoked_at IS NULL",
            {scope.tenant_id(), family_id, format_rfc3339(Clock::now())})
        .affected;
  });
}

int64_t Store::revoke_subject_sessions(const db::TenantScope& scope, const std::string& subject_id) {
  return db_->write(scope, [&](db::Tx& tx) { return revoke_subject_sessions(tx, scope, subject_id); });
}

void Store::insert_password_reset(const db::TenantScope& scope, const std::string& user_id,
                                  const std::string& token_hash, int64_t expires_at) {
  db_->write(scope, [&](db::Tx& tx) {
    tx.query(
        "INSERT INTO auth_db.password_resets (id, tenant_id, user_id, token_hash, expires_at, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        {new_uuid_v7(), scope.tenant_id(), user_id, token_hash, expires_at, format_rfc3339(Clock::now())});
  });
}

void Store::spend_password_resets(db::Tx& tx, const db::TenantScope& scope, const std::string& user_id) {
  tx.query(
      "UPDATE auth_db.password_resets SET used_at = $3 WHERE tenant_id = $1 AND user_id = $2 AND used_at IS "
      "NULL",
      {scope.tenant_id(), user_id, format_rfc3339(Clock::now())});
}

std::optional<std::string> Store::consume_password_reset(const db::TenantScope& scope,
                                                         const std::string& token_hash, int64_t now) {
  return db_->write(scope, [&](db::Tx& tx) -> std::optional<std::string> {
    auto res = tx.query(
        "UPDATE auth_db.password_resets SET used_at = $4 WHERE tenant_id = $1 AND token_hash = $2 "
        "AND used_at IS NULL AND expires_at > $3 RETURNING user_id",
        {scope.tenant_id(), token_hash, now, format_rfc3339(Clock::now())});
    if (res.empty()) return std::nullopt;
    std::string user_id = res.rows[0].text(0);
    spend_password_resets(tx, scope, user_id);  // a reset spends every other link of the user too
    return user_id;
  });
}

void Store::append_audit(db::Tx& tx, const db::TenantScope& scope, const AuditEvent& e) {
  tx.query(
      "INSERT INTO auth_db.audit_log (id, tenant_id, action, actor_type, actor_id, target_type, target_id, "
      "ip, "
      "details, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
      {new_uuid_v7(), scope.tenant_id(), e.action, e.actor_type, e.actor_id, e.target_type, e.target_id, e.ip,
       e.details.dump(), format_rfc3339(Clock::now())});
}

void Store::append_audit(const db::TenantScope& scope, const AuditEvent& e) {
  db_->write(scope, [&](db::Tx& tx) { append_audit(tx, scope, e); });
}

nlohmann::json Store::list_audit(const db::TenantScope& scope, const AuditFilter& f) {
  std::string sql =
      "SELECT id, action, actor_type, actor_id, target_type, target_id, ip, details, created_at "
      "FROM auth_db.audit_log WHERE tenant_id = $1";
  db::Params params{scope.tenant_id()};
  auto bind = [&](db::Param p) {
    params.push_back(p);
    return "$" + std::to_string(params.size());
  };
  if (f.action) sql += " AND action = " + bind(*f.action);
  if (f.actor_id) sql += " AND actor_id = " + bind(*f.actor_id);
  if (f.after_id) sql += " AND id < " + bind(*f.after_id);
  sql += " ORDER BY id DESC LIMIT " + bind(static_cast<int64_t>(f.limit + 1));
  return db_->read(scope, [&](db::Tx& tx) {
    nlohmann::json out = nlohmann::json::array();
    auto opt = [](const std::optional<std::string>& v) {
      return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
    };
    for (const auto& r : tx.query(sql, params).rows) {
      auto details = nlohmann::json::parse(r.text(7), nullptr, false);
      out.push_back({{"id", r.text(0)},
                     {"action", r.text(1)},
                     {"actor", {{"type", r.text(2)}, {"id", opt(r.opt_text(3))}}},
                     {"target", {{"type", opt(r.opt_text(4))}, {"id", opt(r.opt_text(5))}}},
                     {"ip", opt(r.opt_text(6))},
                     {"details", details.is_discarded() ? nlohmann::json::object() : details},
                     {"created_at", r.text(8)}});
    }
    return out;
  });
}

void Store::touch_api_keys_used(const db::TenantScope& scope,
                                const std::vector<std::pair<std::string, std::string>>& id_time) {
  db_->write(scope, [&](db::Tx& tx) {
    for (const auto& [id, at] : id_time)
      tx.query("UPDATE auth_db.api_keys SET last_used_at = $3 WHERE tenant_id = $1 AND id = $2",
               {scope.tenant_id(), id, at});
  });
}

std::optional<ApiKey> Store::find_api_key_by_prefix(const db::TenantScope& scope, std::string_view prefix) {
  return db_->read(scope, [&](db::Tx& tx) -> std::optional<ApiKey> {
    auto res = tx.query(
        std::string("SELECT ") + kKeyColumns + " FROM auth_db.api_keys WHERE tenant_id = $1 AND prefix = $2",
        {scope.tenant_id(), prefix});
    if (res.empty()) return std::nullopt;
    return key_from(res.rows[0]);
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
    tx.query("DELETE FROM auth_db.refresh_tokens WHERE tenant_id = $1", {scope.tenant_id()});
    tx.query("DELETE FROM auth_db.password_resets WHERE tenant_id = $1", {scope.tenant_id()});
    tx.query("DELETE FROM auth_db.audit_log WHERE tenant_id = $1", {scope.tenant_id()});
  });
  db_->write_platform([&](db::Tx& tx) {
    tx.query("DELETE FROM auth_db.api_key_index WHERE tenant_id = $1", {scope.tenant_id()});
  });
}

std::vector<Store::StoredKey> Store::platform_signing_keys(bool with_retired) {
  return db_->read_platform([&](db::Tx& tx) {
    std::vector<StoredKey> out;
    for (const auto& r :
         tx.query(
               std::string("SELECT kid, alg, private_key, kek_id, public_jwk, created_at, active, retired_at "
                           "FROM auth_db.signing_keys") +
               (with_retired ? "" : " WHERE retired_at IS NULL") + " ORDER BY created_at, kid")
             .rows) {
      StoredKey k;
      k.key.kid = r.text(0);
      k.key.alg = r.text(1);
      k.sealed = {r.opt_text(3).value_or(""), r.text(2)};
      k.key.public_jwk = r.text(4);
      k.key.created_at = r.integer(5);
      k.key.active = r.integer(6) != 0;
      k.retired = !r.is_null(7);
      out.push_back(std::move(k));
    }
    return out;
  });
}

void Store::platform_insert_signing_key(const SigningKey& k, const Sealed& sealed) {
  db_->write_platform([&](db::Tx& tx) {
    tx.query("UPDATE auth_db.signing_keys SET active = 0");
    tx.query(
        "INSERT INTO auth_db.signing_keys (kid, alg, private_key, kek_id, public_jwk, created_at, active) "
        "VALUES ($1, $2, $3, $4, $5, $6, 1)",
        {k.kid, k.alg, sealed.text, sealed.kek_id, k.public_jwk, k.created_at});
  });
}

bool Store::platform_reseal_signing_key(const std::string& kid, const Sealed& was, const Sealed& now) {
  return db_->write_platform([&](db::Tx& tx) {
    return tx.query(
                 "UPDATE auth_db.signing_keys SET private_key = $2, kek_id = $3 WHERE kid = $1 "
                 "AND private_key = $4 AND COALESCE(kek_id, '') = $5",
                 {kid, now.text, now.kek_id, was.text, was.kek_id})
               .affected == 1;
  });
}

}  // namespace cdx::auth
