// auth_db schema. users and api_keys are tenant data (RLS on PostgreSQL); api_key_index maps a key's
// public prefix to its tenant so a key can be checked before the tenant is known; signing_keys is platform.
#include "auth/module.hpp"

namespace cdx::auth {

std::vector<db::Migration> AuthModule::migrations() const {
  return {
      {1, "users, api keys, signing keys", R"SQL(
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
  };
}

}  // namespace cdx::auth
