// auth_db schema. users and api_keys are tenant data (RLS on PostgreSQL); api_key_index maps a key's
// public prefix to its tenant so a key can be checked before the tenant is known; signing_keys is platform
// (private keys sealed with the key encryption key since v7).
#include "auth/module.hpp"
#include "db/outbox.hpp"
#include "kit/idempotency.hpp"

namespace cdx::auth {

std::vector<db::Migration> AuthModule::migrations() const {
  return {
      {1,
       "users, api keys, signing keys",
       R"SQL(
CREATE TABLE auth_db.users (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  email TEXT NOT NULL,
  email_normalized TEXT NOT NULL,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  status TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  last_login_at TEXT,
  UNIQUE (tenant_id, email_normalized)
);
CREATE INDEX users_tenant ON auth_db.users (tenant_id, id);
CREATE TABLE auth_db.api_keys (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  name TEXT NOT NULL,
  type TEXT NOT NULL,
  prefix TEXT NOT NULL UNIQUE,
  key_hash TEXT NOT NULL,
  scopes TEXT NOT NULL,
  created_by TEXT,
  expires_at BIGINT,
  revoked_at TEXT,
  last_used_at TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX api_keys_tenant ON auth_db.api_keys (tenant_id, id);
CREATE TABLE auth_db.api_key_index (
  prefix TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  key_id TEXT NOT NULL
);
CREATE INDEX api_key_index_tenant ON auth_db.api_key_index (tenant_id);
CREATE TABLE auth_db.signing_keys (
  kid TEXT PRIMARY KEY,
  alg TEXT NOT NULL,
  private_pem TEXT NOT NULL,
  public_jwk TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  active INTEGER NOT NULL,
  retired_at BIGINT
);
)SQL",
       {"auth_db.users", "auth_db.api_keys"}},
      {2,
       "sessions, password resets, audit log",
       R"SQL(
CREATE TABLE auth_db.refresh_tokens (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  family_id TEXT NOT NULL,
  subject_id TEXT NOT NULL,
  subject_type TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  client_id TEXT,
  scope TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at TEXT,
  revoked_at TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX refresh_tokens_family ON auth_db.refresh_tokens (tenant_id, family_id);
CREATE INDEX refresh_tokens_subject ON auth_db.refresh_tokens (tenant_id, subject_id);
CREATE TABLE auth_db.password_resets (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  expires_at BIGINT NOT NULL,
  used_at TEXT,
  created_at TEXT NOT NULL
);
CREATE TABLE auth_db.audit_log (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  action TEXT NOT NULL,
  actor_type TEXT NOT NULL,
  actor_id TEXT,
  target_type TEXT,
  target_id TEXT,
  ip TEXT,
  details TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX audit_log_tenant ON auth_db.audit_log (tenant_id, id);
CREATE INDEX audit_log_action ON auth_db.audit_log (tenant_id, action, id);
)SQL",
       {"auth_db.refresh_tokens", "auth_db.password_resets", "auth_db.audit_log"},
       // Append-only: rows are added, and purged with their tenant, never edited.
       R"SQL(
CREATE FUNCTION auth_db.audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON auth_db.audit_log
  FOR EACH ROW EXECUTE FUNCTION auth_db.audit_log_append_only();
)SQL",
       R"SQL(
CREATE TRIGGER auth_db.audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
)SQL"},
      // OAuth2 / OIDC provider: clients and codes are tenant data; oauth_secrets holds platform secrets
      // every replica shares (the login form's CSRF key).
      {3,
       "oauth2 clients, authorization codes, provider secrets",
       R"SQL(
CREATE TABLE auth_db.oauth_clients (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  client_id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  type TEXT NOT NULL,
  secret_hash TEXT,
  redirect_uris TEXT NOT NULL,
  allowed_origins TEXT NOT NULL,
  grant_types TEXT NOT NULL,
  scopes TEXT NOT NULL,
  created_by TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX oauth_clients_tenant ON auth_db.oauth_clients (tenant_id, id);
CREATE TABLE auth_db.oauth_codes (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  code_hash TEXT NOT NULL UNIQUE,
  client_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  redirect_uri TEXT NOT NULL,
  redirect_uri_explicit INTEGER NOT NULL,
  code_challenge TEXT NOT NULL,
  scope TEXT NOT NULL,
  nonce TEXT,
  auth_time BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at BIGINT,
  family_id TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX oauth_codes_expiry ON auth_db.oauth_codes (tenant_id, expires_at);
CREATE INDEX oauth_codes_client ON auth_db.oauth_codes (tenant_id, client_id);
CREATE INDEX refresh_tokens_client ON auth_db.refresh_tokens (tenant_id, client_id);
CREATE TABLE auth_db.oauth_secrets (
  name TEXT PRIMARY KEY,
  secret TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
)SQL",
       {"auth_db.oauth_clients", "auth_db.oauth_codes"}},
      // Users, API keys and OAuth clients are kit resources: their events go to auth_db.outbox, a POST's
      // Idempotency-Key answer is kept with the change, and rows carry what the kit renders.
      db::Outbox::migration(4, "auth_db"),
      kit::Idempotency::migration(5, "auth_db"),
      {6,
       "kit resources: api key expiry as RFC 3339, updated_at, a client's token endpoint auth method",
       R"SQL(
ALTER TABLE auth_db.api_keys ADD COLUMN updated_at TEXT;
ALTER TABLE auth_db.oauth_clients ADD COLUMN token_endpoint_auth_method TEXT;
)SQL",
       {},
       // Rows of every tenant: the tables force row-level security even on their owner, so lift it for the
       // backfill.
       R"SQL(
ALTER TABLE auth_db.api_keys ALTER COLUMN expires_at TYPE TEXT USING
  CASE WHEN expires_at IS NULL THEN NULL
       ELSE to_char(to_timestamp(expires_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') END;
ALTER TABLE auth_db.api_keys NO FORCE ROW LEVEL SECURITY;
UPDATE auth_db.api_keys SET updated_at = COALESCE(revoked_at, created_at);
ALTER TABLE auth_db.api_keys FORCE ROW LEVEL SECURITY;
ALTER TABLE auth_db.oauth_clients NO FORCE ROW LEVEL SECURITY;
UPDATE auth_db.oauth_clients
  SET token_endpoint_auth_method = CASE WHEN type = 'public' THEN 'none' ELSE 'client_secret_basic' END;
ALTER TABLE auth_db.oauth_clients FORCE ROW LEVEL SECURITY;
)SQL",
       R"SQL(
UPDATE auth_db.api_keys SET expires_at = strftime('%Y-%m-%dT%H:%M:%SZ', expires_at, 'unixepoch')
  WHERE expires_at IS NOT NULL;
UPDATE auth_db.api_keys SET updated_at = COALESCE(revoked_at, created_at);
UPDATE auth_db.oauth_clients
  SET token_endpoint_auth_method = CASE WHEN type = 'public' THEN 'none' ELSE 'client_secret_basic' END;
)SQL"},
      // Secrets at rest: a private key or provider secret is sealed with the key encryption key named by
      // kek_id (common/key_encryption.hpp). Rows of earlier versions have no kek_id and hold plain text
      // until the server seals them at its next start.
      {7,
       "signing keys and provider secrets sealed with a key encryption key",
       R"SQL(
ALTER TABLE auth_db.signing_keys RENAME COLUMN private_pem TO private_key;
ALTER TABLE auth_db.signing_keys ADD COLUMN kek_id TEXT;
ALTER TABLE auth_db.oauth_secrets ADD COLUMN kek_id TEXT;
)SQL"},
      db::Outbox::pending_index_migration(8, "auth_db"),
      db::Outbox::queue_migration(9, "auth_db"),
  };
}

}  // namespace cdx::auth
