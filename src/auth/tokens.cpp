#include "auth/tokens.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <unordered_set>

#include "common/error.hpp"
#include "common/ids.hpp"

namespace cdx::auth {

void PkeyDeleter::operator()(EVP_PKEY* key) const noexcept { EVP_PKEY_free(key); }

namespace {

using json = nlohmann::json;

constexpr size_t kCoordBytes = 32;                // P-256 field element
constexpr size_t kRawSigBytes = 2 * kCoordBytes;  // JWS ES256 signature: r || s
constexpr size_t kMaxDerSigBytes = 72;            // DER ECDSA-Sig-Value for P-256, worst case

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* p) const noexcept { EVP_MD_CTX_free(p); }
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* p) const noexcept { EVP_PKEY_CTX_free(p); }
};
struct BioDeleter {
  void operator()(BIO* p) const noexcept { BIO_free(p); }
};
struct BnDeleter {
  void operator()(BIGNUM* p) const noexcept { BN_free(p); }
};
struct EcdsaSigDeleter {
  void operator()(ECDSA_SIG* p) const noexcept { ECDSA_SIG_free(p); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter>;
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using BnPtr = std::unique_ptr<BIGNUM, BnDeleter>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, EcdsaSigDeleter>;

// Token failures: one code, a short reason. The OpenSSL error queue is per thread; leave it clean.
[[noreturn]] void reject(const char* reason) {
  ERR_clear_error();
  throw Error(Code::kUnauthorized, reason);
}

// Bad key material or a programming error: configuration, not client input.
[[noreturn]] void config_error(std::string detail) {
  ERR_clear_error();
  throw Error(Code::kInternal, "signing keys: " + std::move(detail));
}

// SHA-256 fetched once rather than looked up by name in the provider store on every token.
const EVP_MD* sha256() {
  struct MdDeleter {
    void operator()(EVP_MD* p) const noexcept { EVP_MD_free(p); }
  };
  static const std::unique_ptr<EVP_MD, MdDeleter> md(EVP_MD_fetch(nullptr, "SHA256", nullptr));
  if (!md) config_error("SHA-256 is unavailable");
  return md.get();
}

std::string_view as_view(const unsigned char* p, size_t n) { return {reinterpret_cast<const char*>(p), n}; }

bool is_p256(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "EC") != 1) return false;
  char name[64];
  size_t len = 0;
  if (EVP_PKEY_get_group_name(key, name, sizeof name, &len) != 1) return false;
  int nid = OBJ_sn2nid(name);
  if (nid == NID_undef) nid = EC_curve_nist2nid(name);
  return nid == NID_X9_62_prime256v1;
}

// The affine coordinates of the public point, each 32 bytes big-endian.
bool public_xy(EVP_PKEY* key, std::string& x, std::string& y) {
  BIGNUM* bx = nullptr;
  BIGNUM* by = nullptr;
  const bool got = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &bx) == 1 &&
                   EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &by) == 1;
  BnPtr hold_x(bx), hold_y(by);
  if (!got) return false;
  unsigned char buf[kCoordBytes];
  if (BN_bn2binpad(bx, buf, sizeof buf) != static_cast<int>(kCoordBytes)) return false;
  x.assign(as_view(buf, sizeof buf));
  if (BN_bn2binpad(by, buf, sizeof buf) != static_cast<int>(kCoordBytes)) return false;
  y.assign(as_view(buf, sizeof buf));
  return true;
}

// A public-only key from raw coordinates; the point is checked to lie on the curve.
PkeyPtr pkey_from_xy(std::string_view x, std::string_view y) {
  if (x.size() != kCoordBytes || y.size() != kCoordBytes) return nullptr;
  unsigned char point[1 + 2 * kCoordBytes];
  point[0] = 0x04;  // uncompressed
  std::memcpy(point + 1, x.data(), kCoordBytes);
  std::memcpy(point + 1 + kCoordBytes, y.data(), kCoordBytes);
  char group[] = "prime256v1";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point),
      OSSL_PARAM_construct_end(),
  };
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    return nullptr;
  }
  PkeyPtr key(raw);
  PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) return nullptr;
  return key;
}

PkeyPtr pkey_from_pem(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return nullptr;
  // A callback that supplies no passphrase: the default one would prompt on the terminal.
  auto no_passphrase = [](char*, int, int, void*) -> int { return 0; };
  return PkeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
}

json public_jwk(std::string_view kid, std::string_view alg, std::string_view x, std::string_view y) {
  return json{
      {"kty", "EC"}, {"crv", "P-256"}, {"x", base64url_encode(x)}, {"y", base64url_encode(y)}, {"kid", kid},
      {"alg", alg},  {"use", "sig"}};
}

// x and y of an EC P-256 JWK, decoded; false when the JWK is not one.
bool jwk_xy(const json& jwk, std::string& x, std::string& y) {
  if (!jwk.is_object()) return false;
  const auto kty = jwk.find("kty"), crv = jwk.find("crv"), jx = jwk.find("x"), jy = jwk.find("y");
  if (kty == jwk.end() || *kty != "EC" || crv == jwk.end() || *crv != "P-256") return false;
  if (jx == jwk.end() || !jx->is_string() || jy == jwk.end() || !jy->is_string()) return false;
  return base64url_decode(jx->get_ref<const std::string&>(), x) &&
         base64url_decode(jy->get_ref<const std::string&>(), y) && x.size() == kCoordBytes &&
         y.size() == kCoordBytes;
}

// JWS ES256 wants r || s, fixed width; OpenSSL speaks DER ECDSA-Sig-Value.
bool der_to_raw(const unsigned char* der, size_t der_len, unsigned char* raw) {
  const unsigned char* p = der;
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)));
  if (!sig) return false;
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  return BN_bn2binpad(r, raw, kCoordBytes) == static_cast<int>(kCoordBytes) &&
         BN_bn2binpad(s, raw + kCoordBytes, kCoordBytes) == static_cast<int>(kCoordBytes);
}

// Returns the DER length, 0 on failure.
size_t raw_to_der(const unsigned char* raw, unsigned char* der) {
  EcdsaSigPtr sig(ECDSA_SIG_new());
  BnPtr r(BN_bin2bn(raw, kCoordBytes, nullptr));
  BnPtr s(BN_bin2bn(raw + kCoordBytes, kCoordBytes, nullptr));
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) return 0;
  r.release();  // owned by sig now
  s.release();
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0 || static_cast<size_t>(len) > kMaxDerSigBytes) return 0;
  unsigned char* p = der;
  return i2d_ECDSA_SIG(sig.get(), &p) == len ? static_cast<size_t>(len) : 0;
}

// A fresh EVP_MD_CTX per call on the shared, never-modified EVP_PKEY: the sharing OpenSSL supports across
// threads. Duplicating a pre-initialised EVP_PKEY_CTX would save ~2 µs of ~25/70 µs, but concurrent dups of
// one template are not a documented guarantee.
bool es256_verify(EVP_PKEY* key, std::string_view signing_input, const unsigned char* raw_sig) {
  unsigned char der[kMaxDerSigBytes];
  const size_t der_len = raw_to_der(raw_sig, der);
  if (der_len == 0) return false;
  MdCtxPtr ctx(EVP_MD_CTX_new());
  return ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, sha256(), nullptr, key) == 1 &&
         EVP_DigestVerify(ctx.get(), der, der_len,
                          reinterpret_cast<const unsigned char*>(signing_input.data()),
                          signing_input.size()) == 1;
}

// NumericDate (RFC 7519 §2) as whole seconds, saturated; nullopt unless a finite JSON number.
// Fractions round towards the stricter side: exp down, nbf and iat up.
std::optional<int64_t> numeric_date(const json& v, bool round_up) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max() / 2;  // far beyond any date, no overflow
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    return u > static_cast<uint64_t>(kMax) ? kMax : static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    return i < -kMax ? -kMax : i > kMax ? kMax : i;
  }
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (!std::isfinite(d)) return std::nullopt;
    d = round_up ? std::ceil(d) : std::floor(d);
    if (d >= static_cast<double>(kMax)) return kMax;
    if (d <= -static_cast<double>(kMax)) return -kMax;
    return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

// The string claim `name`: nullptr when absent; a rejection when present but not a string.
const std::string* string_claim(const json& payload, const char* name, const char* reason) {
  const auto it = payload.find(name);
  if (it == payload.end()) return nullptr;
  if (!it->is_string()) reject(reason);
  return &it->get_ref<const std::string&>();
}

std::string dump(const json& j) {
  try {
    return j.dump();  // strict: claims that are not valid UTF-8 are refused, not silently replaced
  } catch (const json::exception&) {
    config_error("claims are not valid UTF-8");
  }
}

}  // namespace

SigningKey generate_signing_key(int64_t now) {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) config_error("P-256 key generation failed");
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    config_error("cannot encode the private key");
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  std::string x, y;
  if (len <= 0 || !public_xy(key.get(), x, y)) config_error("cannot encode the public key");

  SigningKey out;
  out.kid = random_token(16);
  out.alg = std::string(kEs256);
  out.private_pem.assign(data, static_cast<size_t>(len));
  out.public_jwk = public_jwk(out.kid, out.alg, x, y).dump();
  out.created_at = now;
  out.active = true;
  return out;
}

KeyRing::KeyRing(const std::vector<SigningKey>& keys) {
  json jwks = json::array();
  keys_.reserve(keys.size());
  for (const SigningKey& k : keys) {
    if (k.alg != kEs256) config_error("key '" + k.kid + "' has unsupported alg '" + k.alg + "'");
    std::string x, y;
    PkeyPtr pkey;
    if (!k.private_pem.empty()) {
      pkey = pkey_from_pem(k.private_pem);
      if (!pkey) config_error("key '" + k.kid + "' has an unreadable private PEM");
      if (!is_p256(pkey.get()) || !public_xy(pkey.get(), x, y))
        config_error("key '" + k.kid + "' is not P-256");
      if (!k.public_jwk.empty()) {  // the JWK we serve must be this key's public half
        const json stored = json::parse(k.public_jwk, nullptr, false);
        std::string sx, sy;
        if (!jwk_xy(stored, sx, sy) || sx != x || sy != y) {
          config_error("key '" + k.kid + "': public_jwk does not match the private key");
        }
      }
    } else {
      if (k.active) config_error("active key '" + k.kid + "' has no private key");
      if (!jwk_xy(json::parse(k.public_jwk, nullptr, false), x, y)) {
        config_error("key '" + k.kid + "' has an invalid public_jwk");
      }
      pkey = pkey_from_xy(x, y);
      if (!pkey) config_error("key '" + k.kid + "': public point is not on P-256");
    }
    add_key(k.kid, k.alg, std::move(pkey), x, y, jwks);
    if (k.active) {
      if (active_index_ >= 0) config_error("more than one active key");
      active_index_ = static_cast<int>(keys_.size() - 1);
    }
  }
  finish(jwks);
}

KeyRing KeyRing::from_jwks(std::string_view jwks_text) try {
  const json doc = json::parse(jwks_text, nullptr, false);
  if (!doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array())
    config_error("not a JWKS document");
  KeyRing ring;
  json jwks = json::array();
  for (const json& jwk : doc["keys"]) {
    // Only what we can verify: EC P-256 keys for ES256 signatures. Others (RSA, enc keys) are skipped.
    if (!jwk.is_object() || jwk.value("kty", "") != "EC" || jwk.value("crv", "") != "P-256") continue;
    if (jwk.value("alg", std::string(kEs256)) != kEs256 || jwk.value("use", "sig") != "sig") continue;
    const std::string kid = jwk.value("kid", "");
    std::string x, y;
    if (kid.empty() || !jwk_xy(jwk, x, y)) config_error("JWKS has an invalid EC key");
    PkeyPtr pkey = pkey_from_xy(x, y);
    if (!pkey) config_error("key '" + kid + "': public point is not on P-256");
    ring.add_key(kid, std::string(kEs256), std::move(pkey), x, y, jwks);
  }
  ring.finish(jwks);
  return ring;
} catch (const json::exception&) {  // value() on a member of the wrong type
  config_error("JWKS has a member of the wrong type");
}

void KeyRing::add_key(std::string kid, std::string alg, PkeyPtr pkey, std::string_view x, std::string_view y,
                      json& jwks) {
  // Printable ASCII keeps the header and the JWKS valid JSON text and the kid safe to log.
  const bool printable = std::all_of(kid.begin(), kid.end(), [](char ch) { return ch >= 0x20 && ch < 0x7f; });
  if (kid.empty() || kid.size() > 128 || !printable)
    config_error("a key id must be 1 to 128 printable characters");
  if (find_key(kid) != nullptr) config_error("duplicate key id '" + kid + "'");
  jwks.push_back(public_jwk(kid, alg, x, y));
  keys_.push_back(Key{std::move(kid), std::move(alg), std::move(pkey)});
}

void KeyRing::finish(json& jwks) {
  if (keys_.empty()) config_error("a key ring needs at least one key");
  jwks_json_ = json{{"keys", std::move(jwks)}}.dump();
  if (active_index_ >= 0) {
    const Key& active = keys_[active_index_];
    active_kid_ = active.kid;
    const nlohmann::ordered_json header = {{"alg", active.alg}, {"typ", "JWT"}, {"kid", active.kid}};
    header_b64_ = base64url_encode(header.dump());
  }
}

const KeyRing::Key* KeyRing::find_key(std::string_view kid) const {
  for (const Key& k : keys_)  // a handful of keys: a linear scan beats hashing
    if (k.kid == kid) return &k;
  return nullptr;
}

std::string KeyRing::sign_payload(std::string_view payload_json) const {
  if (active_index_ < 0) config_error("no active signing key");
  const Key& key = keys_[active_index_];

  std::string token;
  token.reserve(header_b64_.size() + payload_json.size() * 4 / 3 + 100);
  token += header_b64_;
  token += '.';
  token += base64url_encode(payload_json);

  unsigned char der[kMaxDerSigBytes + 8];
  size_t der_len = sizeof der;
  unsigned char raw[kRawSigBytes];
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, sha256(), nullptr, key.pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), der, &der_len, reinterpret_cast<const unsigned char*>(token.data()),
                     token.size()) != 1 ||
      !der_to_raw(der, der_len, raw)) {
    config_error("ES256 signing failed");
  }
  token += '.';
  token += base64url_encode(as_view(raw, sizeof raw));
  return token;
}

std::string KeyRing::sign(const TokenClaims& c) const {
  if (!c.extra.is_null() && !c.extra.is_object()) config_error("extra claims must be a JSON object");
  json p = c.extra.is_object() ? c.extra : json::object();
  p["iss"] = c.iss;
  p["sub"] = c.sub;
  p["aud"] = c.aud;
  p["iat"] = c.iat;
  p["exp"] = c.exp;
  p["jti"] = c.jti.empty() ? new_uuid_v7() : c.jti;
  if (!c.tid.empty()) p["tid"] = c.tid;
  if (!c.role.empty()) p["role"] = c.role;
  if (!c.scope.empty()) p["scope"] = c.scope;
  return sign_payload(dump(p));
}

std::string KeyRing::sign_json(const json& payload) const {
  if (!payload.is_object()) config_error("a token payload must be a JSON object");
  const auto exp = payload.find("exp");
  if (exp == payload.end() || !numeric_date(*exp, false)) config_error("a token payload needs a numeric exp");
  return sign_payload(dump(payload));
}

json KeyRing::verify_payload(std::string_view token, const VerifyOptions& opts) const {
  if (opts.issuer.empty() || opts.audience.empty())
    config_error("verification needs an issuer and an audience");
  if (token.size() > kMaxTokenBytes) reject("token too large");

  // Compact serialization: exactly three base64url parts.
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    reject("malformed token");
  }
  const std::string_view header_b64 = token.substr(0, dot1);
  const std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view sig_b64 = token.substr(dot2 + 1);
  if (header_b64.empty() || payload_b64.empty() || sig_b64.empty()) reject("malformed token");

  // Header: only enough of it to choose the key; the payload is not parsed before the signature checks out.
  std::string buf;
  if (!base64url_decode(header_b64, buf)) reject("malformed token");
  const json header = json::parse(buf, nullptr, false);
  if (!header.is_object()) reject("invalid token header");
  if (header.contains("crit")) reject("unsupported critical header");
  const auto kid = header.find("kid");
  if (kid == header.end() || !kid->is_string()) reject("missing key id");
  const Key* key = find_key(kid->get_ref<const std::string&>());
  if (key == nullptr) reject("unknown key id");
  const auto alg = header.find("alg");  // pinned per key: never the token's choice (none, HS256, …)
  if (alg == header.end() || !alg->is_string() || alg->get_ref<const std::string&>() != key->alg) {
    reject("algorithm not allowed");
  }

  if (!base64url_decode(sig_b64, buf) || buf.size() != kRawSigBytes ||
      !es256_verify(key->pkey.get(), token.substr(0, dot2),
                    reinterpret_cast<const unsigned char*>(buf.data()))) {
    reject("invalid signature");
  }

  if (!base64url_decode(payload_b64, buf)) reject("malformed token");
  json payload = json::parse(buf, nullptr, false);
  if (!payload.is_object()) reject("invalid token payload");

  const auto exp_it = payload.find("exp");
  if (exp_it == payload.end()) reject("missing exp");
  const std::optional<int64_t> exp = numeric_date(*exp_it, false);
  if (!exp) reject("invalid exp");
  if (opts.now - opts.leeway_seconds > *exp) reject("token expired");
  if (const auto nbf_it = payload.find("nbf"); nbf_it != payload.end()) {
    const std::optional<int64_t> nbf = numeric_date(*nbf_it, true);
    if (!nbf) reject("invalid nbf");
    if (*nbf > opts.now + opts.leeway_seconds) reject("token not yet valid");
  }
  if (const auto iat_it = payload.find("iat"); iat_it != payload.end()) {
    const std::optional<int64_t> iat = numeric_date(*iat_it, true);
    if (!iat) reject("invalid iat");
    if (*iat > opts.now + opts.leeway_seconds) reject("token issued in the future");
  }

  const std::string* iss = string_claim(payload, "iss", "invalid issuer");
  if (iss == nullptr || *iss != opts.issuer) reject("invalid issuer");
  bool aud_ok = false;
  if (const auto aud = payload.find("aud"); aud != payload.end()) {
    if (aud->is_string()) {
      aud_ok = aud->get_ref<const std::string&>() == opts.audience;
    } else if (aud->is_array()) {
      for (const json& a : *aud)
        if (a.is_string() && a.get_ref<const std::string&>() == opts.audience) aud_ok = true;
    }
  }
  if (!aud_ok) reject("invalid audience");
  return payload;
}

json KeyRing::verify_json(std::string_view token, const VerifyOptions& opts) const {
  return verify_payload(token, opts);
}

TokenClaims KeyRing::verify(std::string_view token, const VerifyOptions& opts) const {
  json payload = verify_payload(token, opts);
  TokenClaims c;
  // Checked by verify_payload: iss is a string equal to the issuer, exp numeric, aud contains the audience.
  c.iss = opts.issuer;
  c.aud = opts.audience;
  c.exp = *numeric_date(payload["exp"], false);
  const auto iat = payload.find("iat");
  if (iat == payload.end()) reject("missing iat");
  c.iat = *numeric_date(*iat, true);
  const std::string* sub = string_claim(payload, "sub", "invalid sub");
  if (sub == nullptr || sub->empty()) reject("missing sub");
  c.sub = *sub;
  if (const std::string* v = string_claim(payload, "jti", "invalid jti")) c.jti = *v;
  if (const std::string* v = string_claim(payload, "tid", "invalid tid")) c.tid = *v;
  if (const std::string* v = string_claim(payload, "role", "invalid role")) c.role = *v;
  if (const std::string* v = string_claim(payload, "scope", "invalid scope")) c.scope = *v;

  static const std::unordered_set<std::string_view> kNamed = {"iss", "sub", "aud",  "exp",  "iat",
                                                              "jti", "tid", "role", "scope"};
  for (auto it = payload.begin(); it != payload.end(); ++it) {
    if (!kNamed.contains(it.key())) c.extra[it.key()] = std::move(it.value());
  }
  return c;
}

}  // namespace cdx::auth
