// JWT access tokens signed with ES256 (RFC 7515/7518/7519), verified as RFC 8725 asks: alg pinned per kid.
//   auto ring = std::make_shared<const KeyRing>(store.signing_keys());  // one active key, old ones kept
//   std::string jwt = ring->sign({.iss = iss, .sub = uid, .aud = "cdx-api", .iat = now, .exp = now + 900});
//   TokenClaims c = ring->verify(jwt, {.issuer = iss, .audience = "cdx-api", .now = Clock::unix_seconds()});
#pragma once
#include <openssl/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace cdx::auth {

inline constexpr std::string_view kEs256 = "ES256";
inline constexpr size_t kMaxTokenBytes = 8192;  // longer tokens are rejected before any decoding

// A row of the signing-key table. private_pem may be empty for a verify-only key (built from its JWK).
struct SigningKey {
  std::string kid;          // random, 16 base62 characters
  std::string alg;          // "ES256": the only algorithm a token naming this kid may use
  std::string private_pem;  // PKCS#8 PEM; never logged, never served
  std::string public_jwk;   // {"kty":"EC","crv":"P-256","x","y","kid","alg":"ES256","use":"sig"}
  int64_t created_at = 0;   // unix seconds
  bool active = false;      // the key new tokens are signed with (at most one per ring)
};

// A fresh P-256 key, marked active: the caller deactivates the previous one when it stores this.
// The kid comes from libsodium: cdx::init_crypto() must have run.
SigningKey generate_signing_key(int64_t now);

// The claims of our access tokens. Empty tid (SUPERADMIN), role and scope are omitted from the token.
struct TokenClaims {
  std::string iss, sub, aud, jti, tid, role, scope;
  int64_t iat = 0, exp = 0;
  nlohmann::json extra;  // any other claims: an object, or null when there are none
};

struct VerifyOptions {
  std::string issuer;    // required, compared exactly with iss
  std::string audience;  // required, must be aud or one of its elements
  int64_t now = 0;       // unix seconds (tests inject it)
  int64_t leeway_seconds = 30;
};

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const noexcept;
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

// The set of keys a process signs and verifies with. Immutable after construction, so one instance is
// safely shared across threads as std::shared_ptr<const KeyRing>; rotation builds a new ring.
// The constructor throws cdx::Error(kInternal) on bad key material (it is configuration, not input).
class KeyRing {
 public:
  explicit KeyRing(const std::vector<SigningKey>& keys);
  // A verify-only ring from a JWKS document such as jwks_json() (a service checking the auth service's
  // tokens).
  static KeyRing from_jwks(std::string_view jwks_json);

  // Header {"alg":"ES256","typ":"JWT","kid":<active>}. An empty jti is replaced by a fresh UUIDv7;
  // extra claims never override the named ones. Throws cdx::Error(kInternal) when there is no active key.
  std::string sign(const TokenClaims& claims) const;
  // Any JSON object with a numeric exp (ID tokens and the like).
  std::string sign_json(const nlohmann::json& payload) const;

  // Every failure throws cdx::Error(kUnauthorized, "<short reason>"); garbage input never crashes.
  TokenClaims verify(std::string_view token, const VerifyOptions& opts) const;
  nlohmann::json verify_json(std::string_view token, const VerifyOptions& opts) const;

  const std::string& jwks_json() const { return jwks_json_; }    // {"keys":[public JWK of every key]}
  const std::string& active_kid() const { return active_kid_; }  // empty for a verify-only ring
  bool can_sign() const { return active_index_ >= 0; }

 private:
  struct Key {
    std::string kid;
    std::string alg;
    PkeyPtr pkey;  // private for keys we sign with, public-only for verify-only keys
  };
  KeyRing() = default;
  void add_key(std::string kid, std::string alg, PkeyPtr pkey, std::string_view x, std::string_view y,
               nlohmann::json& jwks);
  void finish(nlohmann::json& jwks);
  const Key* find_key(std::string_view kid) const;
  std::string sign_payload(std::string_view payload_json) const;
  nlohmann::json verify_payload(std::string_view token, const VerifyOptions& opts) const;

  std::vector<Key> keys_;
  int active_index_ = -1;
  std::string active_kid_;
  std::string header_b64_;  // the active key's encoded header, computed once
  std::string jwks_json_;
};

}  // namespace cdx::auth
