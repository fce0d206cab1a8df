#include "auth/oauth_store.hpp"

#include <algorithm>

#include "common/clock.hpp"
#include "common/ids.hpp"

namespace cdx::auth {

bool OAuthClient::allows_grant(std::string_view g) const {
  return std::find(grant_types.begin(), grant_types.end(), g) != grant_types.end();
}
bool OAuthClient::allows_origin(std::string_view origin) const {
  return std::find(allowed_origins.begin(), allowed_origins.end(), origin) != allowed_origins.end();
}
bool OAuthClient::has_redirect_uri(std::string_view uri) const {
  return std::find(redirect_uris.begin(), redirect_uris.end(), uri) != redirect_uris.end();
}

namespace {

constexpr const char* kClientColumns =
    "id, tenant_id, client_id, name, type, secret_hash, redirect_uris, allowed_origins, grant_types, scopes, "
    "created_by, created_at, updated_at";
constexpr const char* kCodeColumns =
    "id, tenant_id, code_hash, client_id, user_id, redirect_uri, redirect_uri_explicit, code_challenge, "
    "scope, "
    "nonce, auth_time, expires_at, used_at, family_id, created_at";

std::vector<std::string> string_list(const std::string& text) {
  std::vector<std::string> out;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_array())
    for (const auto& v : j)
      if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

OAuthClient client_from(const db::Row& r) {
  OAuthClient c;
  c.id = r.text(0);
  c.tenant_id = r.text(1);
  c.client_id = r.text(2);
  c.name = r.text(3);
  c.type = r.text(4);
  c.secret_hash = r.opt_text(5);
  c.redirect_uris = string_list(r.text(6));
  c.allowed_origins = string_list(r.text(7));
  c.grant_types = string_list(r.text(8));
  c.scopes = string_list(r.text(9));
  c.created_by = r.opt_text(10);
  c.created_at = r.text(11);
  c.updated_at = r.text(12);
  return c;
}

AuthCode code_from(const db::Row& r) {
  AuthCode c;
  c.id = r.text(0);
  c.tenant_id = r.text(1);
  c.code_hash = r.text(2);
  c.client_id = r.text(3);
  c.user_id = r.text(4);
  c.redirect_uri = r.text(5);
  c.redirect_uri_explicit = r.integer(6) != 0;
  c.code_challenge = r.text(7);
  c.scope = r.text(8);
  c.nonce = r.opt_text(9);
  c.auth_time = r.integer(10);
  c.expires_at = r.integer(11);
  c.used_at = r.opt_integer(12);
  c.family_id = r.opt_text(13);
  c.created_at = r.text(14);
  return c;
}

int64_t revoke_family(db::Tx& tx, const db::TenantScope& scope, const std::string& family_id) {
  return tx
      .query(
          "UPDATE auth_db.refresh_tokens SET revoked_at = $3 WHERE tenant_id = $1 AND family_id = $2 "
          "AND revoked_at IS NULL",
          {scope.tenant_id(), family_id, format_rfc3339(Clock::now())})
      .affected;
}

}  // namespace

int64_t OAuthStore::count_clients(db::Tx& tx, const db::TenantScope& scope) {
  return tx.query("SELECT COUNT(*) FROM auth_db.oauth_clients WHERE tenant_id = $1", {scope.tenant_id()})
      .rows.at(0)
      .integer(0);
}

void OAuthStore::forget_client(db::Tx& tx, const db::TenantScope& scope, const std::string& client_id) {
  tx.query(
      "UPDATE auth_db.refresh_tokens SET revoked_at = $3 WHERE tenant_id = $1 AND client_id = $2 "
      "AND revoked_at IS NULL",
      {scope.tenant_id(), client_id, format_rfc3339(Clock::now())});
  tx.query("DELETE FROM auth_db.oauth_codes WHERE tenant_id = $1 AND client_id = $2",
           {scope.tenant_id(), client_id});
}

std::optional<OAuthClient> OAuthStore::find_client(const db::TenantScope& scope,
                                                   std::string_view id_or_client_id) {
  return db_->read(scope, [&](db::Tx& tx) -> std::optional<OAuthClient> {
    auto res =
        tx.query(std::string("SELECT ") + kClientColumns +
                     " FROM auth_db.oauth_clients WHERE tenant_id = $1 AND (id = $2 OR client_id = $2)",
                 {scope.tenant_id(), id_or_client_id});
    if (res.empty()) return std::nullopt;
    return client_from(res.rows[0]);
  });
}

void OAuthStore::insert_code(const db::TenantScope& scope, const AuthCode& c, int64_t purge_before,
                             bool login) {
  db_->write(scope, [&](db::Tx& tx) {
    tx.query("DELETE FROM auth_db.oauth_codes WHERE tenant_id = $1 AND expires_at < $2",
             {scope.tenant_id(), purge_before});
    tx.query(std::string("INSERT INTO auth_db.oauth_codes (") + kCodeColumns +
                 ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, NULL, $13)",
             {c.id, scope.tenant_id(), c.code_hash, c.client_id, c.user_id, c.redirect_uri,
              c.redirect_uri_explicit, c.code_challenge, c.scope, c.nonce, c.auth_time, c.expires_at,
              c.created_at});
    if (login)
      tx.query("UPDATE auth_db.users SET last_login_at = $3 WHERE tenant_id = $1 AND id = $2",
               {scope.tenant_id(), c.user_id, format_rfc3339(Clock::now())});
  });
}

std::optional<AuthCode> OAuthStore::find_code(const db::TenantScope& scope, const std::string& code_hash) {
  return db_->read(scope, [&](db::Tx& tx) -> std::optional<AuthCode> {
    auto res = tx.query(std::string("SELECT ") + kCodeColumns +
                            " FROM auth_db.oauth_codes WHERE tenant_id = $1 AND code_hash = $2",
                        {scope.tenant_id(), code_hash});
    if (res.empty()) return std::nullopt;
    return code_from(res.rows[0]);
  });
}

bool OAuthStore::redeem_code(const db::TenantScope& scope, const AuthCode& code, const RefreshToken& t,
                             int64_t now) {
  return db_->write(scope, [&](db::Tx& tx) {
    // Conditional update: of two concurrent redemptions exactly one wins. On PostgreSQL the loser waits on
    // the row lock until the winner commits, so it then sees (and revokes) the winner's session.
    if (tx.query(
              "UPDATE auth_db.oauth_codes SET used_at = $3, family_id = $4 WHERE tenant_id = $1 AND id = $2 "
              "AND used_at IS NULL",
              {scope.tenant_id(), code.id, now, t.family_id})
            .affected != 1) {
      auto res = tx.query("SELECT family_id FROM auth_db.oauth_codes WHERE tenant_id = $1 AND id = $2",
                          {scope.tenant_id(), code.id});
      if (!res.empty() && !res.rows[0].is_null(0)) revoke_family(tx, scope, res.rows[0].text(0));
      return false;
    }
    tx.query(
        "INSERT INTO auth_db.refresh_tokens (id, tenant_id, family_id, subject_id, subject_type, token_hash, "
        "client_id, scope, expires_at, used_at, revoked_at, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, $10)",
        {t.id, scope.tenant_id(), t.family_id, t.subject_id, t.subject_type, t.token_hash, t.client_id,
         t.scope, t.expires_at, t.created_at});
    return true;
  });
}

int64_t OAuthStore::revoke_code_family(const db::TenantScope& scope, const std::string& code_id) {
  return db_->write(scope, [&](db::Tx& tx) -> int64_t {
    auto res = tx.query("SELECT family_id FROM auth_db.oauth_codes WHERE tenant_id = $1 AND id = $2",
                        {scope.tenant_id(), code_id});
    if (res.empty() || res.rows[0].is_null(0)) return 0;
    return revoke_family(tx, scope, res.rows[0].text(0));
  });
}

bool OAuthStore::session_active(const db::TenantScope& scope, const std::string& family_id) {
  return db_->read(scope, [&](db::Tx& tx) {
    return !tx.query(
                  "SELECT 1 FROM auth_db.refresh_tokens WHERE tenant_id = $1 AND family_id = $2 "
                  "AND revoked_at IS NULL LIMIT 1",
                  {scope.tenant_id(), family_id})
                .empty();
  });
}

void OAuthStore::purge_tenant(const db::TenantScope& scope) {
  db_->write(scope, [&](db::Tx& tx) {
    tx.query("DELETE FROM auth_db.oauth_codes WHERE tenant_id = $1", {scope.tenant_id()});
    tx.query("DELETE FROM auth_db.oauth_clients WHERE tenant_id = $1", {scope.tenant_id()});
  });
}

std::vector<std::pair<std::string, Sealed>> OAuthStore::platform_secrets() {
  return db_->read_platform([&](db::Tx& tx) {
    std::vector<std::pair<std::string, Sealed>> out;
    for (const auto& r :
         tx.query("SELECT name, secret, kek_id FROM auth_db.oauth_secrets ORDER BY name").rows)
      out.emplace_back(r.text(0), Sealed{r.opt_text(2).value_or(""), r.text(1)});
    return out;
  });
}

std::optional<Sealed> OAuthStore::platform_secret(const std::string& name) {
  return db_->read_platform([&](db::Tx& tx) -> std::optional<Sealed> {
    auto res = tx.query("SELECT secret, kek_id FROM auth_db.oauth_secrets WHERE name = $1", {name});
    if (res.empty()) return std::nullopt;
    return Sealed{res.rows[0].opt_text(1).value_or(""), res.rows[0].text(0)};
  });
}

bool OAuthStore::platform_insert_secret(const std::string& name, const Sealed& sealed) {
  return db_->write_platform([&](db::Tx& tx) {
    return tx.query(
                 "INSERT INTO auth_db.oauth_secrets (name, secret, kek_id, created_at) VALUES ($1, $2, $3, "
                 "$4) "
                 "ON CONFLICT (name) DO NOTHING",
                 {name, sealed.text, sealed.kek_id, Clock::unix_seconds()})
               .affected == 1;
  });
}

bool OAuthStore::platform_reseal_secret(const std::string& name, const Sealed& was, const Sealed& now) {
  return db_->write_platform([&](db::Tx& tx) {
    return tx.query(
                 "UPDATE auth_db.oauth_secrets SET secret = $2, kek_id = $3 WHERE name = $1 AND secret = $4 "
                 "AND COALESCE(kek_id, '') = $5",
                 {name, now.text, now.kek_id, was.text, was.kek_id})
               .affected == 1;
  });
}

std::string OAuthStore::platform_signing_key_fingerprint() {
  return db_->read_platform([&](db::Tx& tx) {
    std::string out;
    for (const auto& r :
         tx.query("SELECT kid, active FROM auth_db.signing_keys WHERE retired_at IS NULL ORDER BY kid")
             .rows) {
      out += r.text(0);
      out += r.integer(1) != 0 ? ":1," : ":0,";
    }
    return out;
  });
}

std::vector<std::string> OAuthStore::platform_retire_signing_keys(int64_t now, int64_t inactive_for) {
  return db_->write_platform([&](db::Tx& tx) {
    struct Key {
      std::string kid;
      int64_t created_at;
      bool active, retired;
    };
    std::vector<Key> keys;
    for (const auto& r :
         tx.query("SELECT kid, created_at, active, retired_at FROM auth_db.signing_keys").rows)
      keys.push_back({r.text(0), r.integer(1), r.integer(2) != 0, !r.is_null(3)});
    std::vector<std::string> retired;
    for (const Key& k : keys) {
      if (k.active || k.retired) continue;
      // A key stops signing when the next one is created: the earliest other key not older than it.
      std::optional<int64_t> stopped;
      for (const Key& o : keys)
        if (&o != &k && o.created_at >= k.created_at && (!stopped || o.created_at < *stopped))
          stopped = o.created_at;
      if (!stopped || now - *stopped < inactive_for) continue;
      if (tx.query("UPDATE auth_db.signing_keys SET retired_at = $2 WHERE kid = $1 AND active = 0 "
                   "AND retired_at IS NULL",
                   {k.kid, now})
              .affected > 0)
        retired.push_back(k.kid);
    }
    return retired;
  });
}

}  // namespace cdx::auth
