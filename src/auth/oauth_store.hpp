// The OAuth2 / OIDC provider's SQL, and nowhere else: registered clients and authorization codes (tenant
// data, behind RLS), the provider's shared secrets and signing-key retirement (platform paths, named so).
//   auto client = oauth_store.find_client(scope, "0193…-….Xy7…");
//   oauth_store.insert_code(scope, code, now - 3600);
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/model.hpp"
#include "common/key_encryption.hpp"
#include "db/database.hpp"

namespace cdx::auth {

// A tenant's client application. client_id is "<tenant id>.<random>", so the token endpoint finds the
// tenant from the client id alone; the secret of a confidential client is stored as its SHA-256.
struct OAuthClient {
  std::string id, tenant_id, client_id, name, type;  // type: confidential | public
  std::optional<std::string> secret_hash, created_by;
  std::vector<std::string> redirect_uris, allowed_origins, grant_types, scopes;
  std::string created_at, updated_at;

  bool is_public() const { return type == "public"; }
  bool allows_grant(std::string_view g) const;
  bool allows_origin(std::string_view origin) const;
  bool has_redirect_uri(std::string_view uri) const;
};

// An authorization code: single use, short-lived, bound to everything the authorization request said.
struct AuthCode {
  std::string id, tenant_id, code_hash, client_id, user_id, redirect_uri, code_challenge, scope, created_at;
  bool redirect_uri_explicit = true;  // the request named redirect_uri (then the token request must too)
  std::optional<std::string> nonce, family_id;
  int64_t auth_time = 0, expires_at = 0;
  std::optional<int64_t> used_at;
};

class OAuthStore {
 public:
  explicit OAuthStore(std::shared_ptr<db::Database> db) : db_(std::move(db)) {}

  // By id or by client_id (the protocol's lookup; registration is the kit's, resources.cpp).
  std::optional<OAuthClient> find_client(const db::TenantScope& scope, std::string_view id_or_client_id);
  // Inside the kit's write transaction: the tenant's clients; a deleted client's codes and refresh tokens.
  static int64_t count_clients(db::Tx& tx, const db::TenantScope& scope);
  static void forget_client(db::Tx& tx, const db::TenantScope& scope, const std::string& client_id);

  // Also deletes the tenant's codes that expired before purge_before (used ones are kept until then so a
  // replay is still recognised), and records the user's login when `login` is set.
  void insert_code(const db::TenantScope& scope, const AuthCode& code, int64_t purge_before, bool login);
  std::optional<AuthCode> find_code(const db::TenantScope& scope, const std::string& code_hash);
  // Marks the code used, binds it to the session family and stores the family's first refresh token, in one
  // transaction. False when another request redeemed it first: that family is revoked then (a replay).
  bool redeem_code(const db::TenantScope& scope, const AuthCode& code, const RefreshToken& first,
                   int64_t now);
  // A replayed code: revokes the family issued from it (RFC 6749 §4.1.2). Answers the rows revoked.
  int64_t revoke_code_family(const db::TenantScope& scope, const std::string& code_id);
  // True while the session family has a refresh token that is not revoked (logout, refresh-token reuse, a
  // replayed code and password, role or status changes revoke them all).
  bool session_active(const db::TenantScope& scope, const std::string& family_id);

  void purge_tenant(const db::TenantScope& scope);

  // Platform: the provider's named secrets shared by every replica, sealed with the key encryption key
  // (sealed.kek_id empty in a row of an earlier version, whose text is the plain secret). All of them, or
  // one.
  std::vector<std::pair<std::string, Sealed>> platform_secrets();
  std::optional<Sealed> platform_secret(const std::string& name);
  // Replicas starting together: the first insert wins (false for the others, who read that one).
  bool platform_insert_secret(const std::string& name, const Sealed& sealed);
  // Replaces a secret's sealed text if the row still holds `was`; true when this call replaced it.
  bool platform_reseal_secret(const std::string& name, const Sealed& was, const Sealed& now);
  // Platform: "kid:active,…" of the signing keys in use, to notice a rotation made by another process.
  std::string platform_signing_key_fingerprint();
  // Platform: retires every inactive key that stopped signing at least inactive_for seconds ago (when the
  // next key was created); answers their kids. The active key is never retired.
  std::vector<std::string> platform_retire_signing_keys(int64_t now, int64_t inactive_for);

 private:
  std::shared_ptr<db::Database> db_;
};

}  // namespace cdx::auth
