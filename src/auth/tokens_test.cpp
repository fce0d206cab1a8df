#include "auth/tokens.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <atomic>
#include <limits>
#include <memory>
#include <random>
#include <thread>

#include "common/error.hpp"
#include "common/ids.hpp"

namespace cdx::auth {
namespace {

using json = nlohmann::json;

// random_token and new_uuid_v7 need libsodium initialised.
class CryptoEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { init_crypto(); }
};
const auto* const kCryptoEnv = ::testing::AddGlobalTestEnvironment(new CryptoEnvironment);

constexpr int64_t kNow = 1767225600;  // 2026-01-01T00:00:00Z
const char kIssuer[] = "https://auth.cdx.test";
const char kAudience[] = "cdx-api";

VerifyOptions opts(int64_t now = kNow) { return {kIssuer, kAudience, now, 30}; }

TokenClaims full_claims() {
  TokenClaims c;
  c.iss = kIssuer;
  c.sub = "0193a000-0000-7000-8000-000000000001";
  c.aud = kAudience;
  c.jti = "0193a000-0000-7000-8000-0000000000ff";
  c.tid = "0193a000-0000-7000-8000-00000000000t";
  c.role = "ADMIN";
  c.scope = "crm:read crm:write";
  c.iat = kNow;
  c.exp = kNow + 900;
  c.extra = {{"amr", json::array({"pwd"})}, {"sid", "session-1"}};
  return c;
}

json full_payload() {
  return {{"iss", kIssuer},    {"sub", "user-1"}, {"aud", kAudience}, {"iat", kNow},
          {"exp", kNow + 900}, {"jti", "j-1"},    {"tid", "t-1"},     {"role", "CLIENT"}};
}

// ---- a second, independent ES256 implementation, so the tests can forge exactly the tokens they need ----

struct Pkey {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyHandle = std::unique_ptr<EVP_PKEY, Pkey>;

PkeyHandle load_pem(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                &BIO_free);
  return PkeyHandle(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

std::string public_pem(const std::string& private_pem) {
  PkeyHandle key = load_pem(private_pem);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  PEM_write_bio_PUBKEY(bio.get(), key.get());
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string der_sign(const std::string& private_pem, std::string_view input) {
  PkeyHandle key = load_pem(private_pem);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  unsigned char der[80];
  size_t der_len = sizeof der;
  EXPECT_EQ(EVP_DigestSignInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, key.get(), nullptr), 1);
  EXPECT_EQ(EVP_DigestSign(ctx.get(), der, &der_len, reinterpret_cast<const unsigned char*>(input.data()),
                           input.size()),
            1);
  return std::string(reinterpret_cast<const char*>(der), der_len);
}

bool der_verify(const std::string& private_pem, std::string_view input, const std::string& der) {
  PkeyHandle key = load_pem(private_pem);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  return EVP_DigestVerifyInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, key.get(), nullptr) == 1 &&
         EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(der.data()), der.size(),
                          reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
}

std::string der_to_raw(const std::string& der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(
      d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())), &ECDSA_SIG_free);
  unsigned char raw[64];
  BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), raw, 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), raw + 32, 32);
  return std::string(reinterpret_cast<const char*>(raw), sizeof raw);
}

std::string hs256(std::string_view key, std::string_view input) {
  unsigned char mac[32];
  size_t mac_len = 0;
  EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
            reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, sizeof mac, &mac_len);
  return std::string(reinterpret_cast<const char*>(mac), mac_len);
}

// A correctly ES256-signed token with any header and payload text.
std::string forge(const std::string& pem, std::string_view header, std::string_view payload) {
  std::string input = base64url_encode(header) + "." + base64url_encode(payload);
  return input + "." + base64url_encode(der_to_raw(der_sign(pem, input)));
}

struct Parts {
  std::string header, payload, sig;  // still encoded
};
Parts split(const std::string& token) {
  const size_t a = token.find('.'), b = token.find('.', a + 1);
  return {token.substr(0, a), token.substr(a + 1, b - a - 1), token.substr(b + 1)};
}
std::string decode(std::string_view b64) {
  std::string out;
  EXPECT_TRUE(base64url_decode(b64, out)) << b64;
  return out;
}

void expect_rejected(const KeyRing& ring, std::string_view token, const std::string& reason,
                     const VerifyOptions& o = opts()) {
  try {
    ring.verify(token, o);
    ADD_FAILURE() << "accepted: " << token.substr(0, 200);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::kUnauthorized) << e.detail();
    EXPECT_NE(e.detail().find(reason), std::string::npos)
        << "reason '" << e.detail() << "', wanted '" << reason << "'";
  }
}

class AuthTokensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = generate_signing_key(kNow - 86400);
    ring_ = std::make_unique<KeyRing>(std::vector<SigningKey>{key_});
  }
  std::string header(std::string_view alg) const {
    return json{{"alg", alg}, {"typ", "JWT"}, {"kid", key_.kid}}.dump();
  }
  std::string forge_payload(const json& payload) const {
    return forge(key_.private_pem, header("ES256"), payload.dump());
  }

  SigningKey key_;
  std::unique_ptr<KeyRing> ring_;
};

// ---- keys ----

TEST(AuthSigningKeyTest, GeneratesP256KeyWithPublicJwkOnly) {
  init_crypto();
  const SigningKey k = generate_signing_key(kNow);
  EXPECT_EQ(k.kid.size(), 16u);
  EXPECT_EQ(k.kid.find_first_not_of("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
            std::string::npos);
  EXPECT_EQ(k.alg, "ES256");
  EXPECT_EQ(k.created_at, kNow);
  EXPECT_TRUE(k.active);
  EXPECT_EQ(k.private_pem.rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u);  // PKCS#8, unencrypted
  const json jwk = json::parse(k.public_jwk);
  EXPECT_EQ(jwk.at("kty"), "EC");
  EXPECT_EQ(jwk.at("crv"), "P-256");
  EXPECT_EQ(jwk.at("kid"), k.kid);
  EXPECT_EQ(jwk.at("alg"), "ES256");
  EXPECT_EQ(jwk.at("use"), "sig");
  EXPECT_EQ(decode(jwk.at("x").get<std::string>()).size(), 32u);
  EXPECT_EQ(decode(jwk.at("y").get<std::string>()).size(), 32u);
  EXPECT_FALSE(jwk.contains("d"));
  EXPECT_NE(generate_signing_key(kNow).kid, k.kid);
}

TEST(AuthKeyRingTest, RejectsBadKeyMaterial) {
  init_crypto();
  const SigningKey a = generate_signing_key(kNow);
  SigningKey b = generate_signing_key(kNow);
  auto expect_config_error = [](std::vector<SigningKey> keys, const char* what) {
    try {
      KeyRing ring(keys);
      ADD_FAILURE() << "accepted: " << what;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Code::kInternal) << what;
      EXPECT_EQ(e.detail().find("PRIVATE KEY"), std::string::npos) << "PEM leaked into the error";
    }
  };
  expect_config_error({}, "no keys");
  expect_config_error({a, b}, "two active keys");
  SigningKey dup = b;
  dup.kid = a.kid;
  dup.active = false;
  expect_config_error({a, dup}, "duplicate kid");
  SigningKey bad_kid = a;
  bad_kid.kid = "kid\xff";
  expect_config_error({bad_kid}, "kid not printable ASCII");
  SigningKey bad_pem = a;
  bad_pem.private_pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
  expect_config_error({bad_pem}, "bad PEM");
  SigningKey rs = a;
  rs.alg = "RS256";
  expect_config_error({rs}, "alg RS256");
  SigningKey mismatched = a;
  mismatched.public_jwk = b.public_jwk;
  expect_config_error({mismatched}, "public_jwk of another key");
  SigningKey public_only_active = a;
  public_only_active.private_pem.clear();
  expect_config_error({public_only_active}, "active key without private key");

  // A P-384 key is a fine EC key, but not one ES256 may use.
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> p384(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"),
                                                           &EVP_PKEY_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  ASSERT_EQ(PEM_write_bio_PrivateKey(bio.get(), p384.get(), nullptr, nullptr, 0, nullptr, nullptr), 1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  SigningKey wrong_curve = a;
  wrong_curve.private_pem.assign(data, static_cast<size_t>(len));
  wrong_curve.public_jwk.clear();
  expect_config_error({wrong_curve}, "P-384 key");

  b.active = false;
  EXPECT_NO_THROW(KeyRing({a, b}));
}

TEST(AuthKeyRingTest, VerifyOnlyRingCannotSign) {
  init_crypto();
  SigningKey k = generate_signing_key(kNow);
  k.active = false;
  const KeyRing ring({k});
  EXPECT_FALSE(ring.can_sign());
  EXPECT_TRUE(ring.active_kid().empty());
  try {
    ring.sign(full_claims());
    ADD_FAILURE() << "signed without an active key";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::kInternal);
  }
}

// ---- round trips ----

TEST_F(AuthTokensTest, RoundTripKeepsEveryClaim) {
  const TokenClaims in = full_claims();
  const std::string token = ring_->sign(in);
  const TokenClaims out = ring_->verify(token, opts());
  EXPECT_EQ(out.iss, in.iss);
  EXPECT_EQ(out.sub, in.sub);
  EXPECT_EQ(out.aud, in.aud);
  EXPECT_EQ(out.jti, in.jti);
  EXPECT_EQ(out.tid, in.tid);
  EXPECT_EQ(out.role, in.role);
  EXPECT_EQ(out.scope, in.scope);
  EXPECT_EQ(out.iat, in.iat);
  EXPECT_EQ(out.exp, in.exp);
  EXPECT_EQ(out.extra, in.extra);
}

TEST_F(AuthTokensTest, HeaderAndSignatureHaveTheJwsShape) {
  const Parts p = split(ring_->sign(full_claims()));
  const json header = json::parse(decode(p.header));
  EXPECT_EQ(header, (json{{"alg", "ES256"}, {"typ", "JWT"}, {"kid", key_.kid}}));
  EXPECT_EQ(ring_->active_kid(), key_.kid);
  EXPECT_EQ(p.sig.size(), 86u);  // 64 bytes, unpadded base64url
  EXPECT_EQ(decode(p.sig).size(), 64u);
  EXPECT_EQ(p.header.find('='), std::string::npos);
  EXPECT_EQ(p.payload.find('='), std::string::npos);
  // Our raw r||s, converted to DER, is a valid signature for an independent verifier.
  const std::string raw = decode(p.sig);
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(ECDSA_SIG_new(), &ECDSA_SIG_free);
  ECDSA_SIG_set0(sig.get(), BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr),
                 BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr));
  unsigned char der[80];
  unsigned char* w = der;
  const int der_len = i2d_ECDSA_SIG(sig.get(), &w);
  EXPECT_TRUE(der_verify(key_.private_pem, p.header + "." + p.payload,
                         std::string(reinterpret_cast<const char*>(der), static_cast<size_t>(der_len))));
}

TEST_F(AuthTokensTest, SignatureRoundTripsAcrossManyTokens) {
  // About 1 in 128 signatures has an r or s shorter than 32 bytes: padding must survive both ways.
  for (int i = 0; i < 300; ++i) {
    TokenClaims c = full_claims();
    c.jti = "jti-" + std::to_string(i);
    EXPECT_EQ(ring_->verify(ring_->sign(c), opts()).jti, c.jti);
  }
}

TEST_F(AuthTokensTest, SuperadminTokenOmitsEmptyOptionalClaims) {
  TokenClaims c = full_claims();
  c.tid.clear();
  c.scope.clear();
  c.jti.clear();
  c.extra = nullptr;
  const std::string token = ring_->sign(c);
  const json payload = json::parse(decode(split(token).payload));
  EXPECT_FALSE(payload.contains("tid"));
  EXPECT_FALSE(payload.contains("scope"));
  EXPECT_EQ(payload.at("jti").get<std::string>().size(), 36u);  // a fresh UUIDv7
  const TokenClaims out = ring_->verify(token, opts());
  EXPECT_TRUE(out.tid.empty());
  EXPECT_EQ(out.jti, payload.at("jti"));
  EXPECT_TRUE(out.extra.is_null());
}

TEST_F(AuthTokensTest, ExtraClaimsCannotOverrideNamedOnes) {
  TokenClaims c = full_claims();
  c.extra = {{"role", "SUPERADMIN"}, {"exp", kNow + 999999}, {"custom", 1}};
  const TokenClaims out = ring_->verify(ring_->sign(c), opts());
  EXPECT_EQ(out.role, "ADMIN");
  EXPECT_EQ(out.exp, kNow + 900);
  EXPECT_EQ(out.extra, (json{{"custom", 1}}));
}

TEST_F(AuthTokensTest, SignJsonAndVerifyJson) {
  json id_token = full_payload();
  id_token["aud"] = json::array({"client-abc", kAudience});
  id_token["nonce"] = "n-0S6_WzA2Mj";
  const json out = ring_->verify_json(ring_->sign_json(id_token), opts());
  EXPECT_EQ(out, id_token);
  for (const json& bad : {json::array({1}), json("text"), json{{"sub", "x"}}, json{{"exp", "soon"}}}) {
    try {
      ring_->sign_json(bad);
      ADD_FAILURE() << "signed " << bad.dump();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Code::kInternal);
    }
  }
}

TEST_F(AuthTokensTest, SignRefusesInvalidUtf8Claims) {
  TokenClaims c = full_claims();
  c.sub = "bad\xff";
  EXPECT_THROW(ring_->sign(c), Error);
}

// ---- RFC 8725 attacks ----

TEST_F(AuthTokensTest, AlgNoneIsRejected) {
  const Parts p = split(ring_->sign(full_claims()));
  for (const char* alg : {"none", "None", "NONE", "nOnE"}) {
    const std::string h = base64url_encode(header(alg));
    expect_rejected(*ring_, h + "." + p.payload + ".", "malformed token");  // unsecured JWS, empty signature
    expect_rejected(*ring_, h + "." + p.payload + "." + p.sig, "algorithm not allowed");  // signature kept
  }
  // Unsecured JWS without a kid, as an attacker would actually send it.
  expect_rejected(*ring_, base64url_encode(R"({"alg":"none"})") + "." + p.payload + ".", "malformed token");
  expect_rejected(*ring_, base64url_encode(R"({"alg":"none"})") + "." + p.payload + "." + p.sig,
                  "missing key id");
}

TEST_F(AuthTokensTest, Hs256KeyedWithThePublicKeyIsRejected) {
  const std::string payload = base64url_encode(full_payload().dump());
  const std::string input = base64url_encode(header("HS256")) + "." + payload;
  for (const std::string& secret : {key_.public_jwk, public_pem(key_.private_pem), key_.kid}) {
    expect_rejected(*ring_, input + "." + base64url_encode(hs256(secret, input)), "algorithm not allowed");
  }
}

TEST_F(AuthTokensTest, OtherAlgorithmsAndMissingAlgAreRejected) {
  const json payload = full_payload();
  for (const char* alg : {"RS256", "ES384", "ES512", "PS256", "EdDSA", "es256", "ES256 ", ""}) {
    expect_rejected(*ring_, forge(key_.private_pem, header(alg), payload.dump()), "algorithm not allowed");
  }
  expect_rejected(*ring_, forge(key_.private_pem, json{{"kid", key_.kid}}.dump(), payload.dump()),
                  "algorithm not allowed");
  expect_rejected(*ring_,
                  forge(key_.private_pem, json{{"alg", 256}, {"kid", key_.kid}}.dump(), payload.dump()),
                  "algorithm not allowed");
  // The control: the same forge with the right alg is accepted, so the rejections above are about alg.
  EXPECT_EQ(ring_->verify(forge_payload(payload), opts()).sub, "user-1");
}

TEST_F(AuthTokensTest, UnknownOrMissingKidIsRejected) {
  const std::string payload = full_payload().dump();
  expect_rejected(*ring_, forge(key_.private_pem, json{{"alg", "ES256"}, {"kid", "nope"}}.dump(), payload),
                  "unknown key id");
  expect_rejected(*ring_, forge(key_.private_pem, json{{"alg", "ES256"}, {"typ", "JWT"}}.dump(), payload),
                  "missing key id");
  expect_rejected(*ring_, forge(key_.private_pem, json{{"alg", "ES256"}, {"kid", 7}}.dump(), payload),
                  "missing key id");
  expect_rejected(*ring_, forge(key_.private_pem, json{{"alg", "ES256"}, {"kid", nullptr}}.dump(), payload),
                  "missing key id");
}

TEST_F(AuthTokensTest, CritHeaderIsRejected) {
  const json h = {{"alg", "ES256"}, {"kid", key_.kid}, {"crit", json::array({"exp"})}, {"exp", kNow}};
  expect_rejected(*ring_, forge(key_.private_pem, h.dump(), full_payload().dump()), "critical");
  const json b64 = {{"alg", "ES256"}, {"kid", key_.kid}, {"crit", json::array({"b64"})}, {"b64", false}};
  expect_rejected(*ring_, forge(key_.private_pem, b64.dump(), full_payload().dump()), "critical");
}

TEST_F(AuthTokensTest, TamperedPayloadIsRejected) {
  TokenClaims c = full_claims();
  c.role = "CLIENT";
  const Parts p = split(ring_->sign(c));
  json payload = json::parse(decode(p.payload));
  payload["role"] = "ADMIN";  // one claim changed, signature kept
  expect_rejected(*ring_, p.header + "." + base64url_encode(payload.dump()) + "." + p.sig,
                  "invalid signature");
  // Re-encoding the same JSON differently still changes the signed bytes.
  expect_rejected(*ring_, p.header + "." + base64url_encode(decode(p.payload) + " ") + "." + p.sig,
                  "invalid signature");
}

TEST_F(AuthTokensTest, TokenSignedByAnotherKeyOfTheRingUnderThisKidIsRejected) {
  SigningKey other = generate_signing_key(kNow);
  other.active = false;
  const KeyRing ring({key_, other});
  // Signed with `other`, but the header names key_.kid.
  expect_rejected(ring, forge(other.private_pem, header("ES256"), full_payload().dump()),
                  "invalid signature");
}

TEST_F(AuthTokensTest, TamperedSignatureIsRejected) {
  const std::string token = ring_->sign(full_claims());
  const Parts p = split(token);
  const std::string raw = decode(p.sig);
  for (size_t i = 0; i < raw.size(); i += 7) {
    std::string bad = raw;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    expect_rejected(*ring_, p.header + "." + p.payload + "." + base64url_encode(bad), "invalid signature");
  }
  const std::string zeros(64, '\0');
  expect_rejected(*ring_, p.header + "." + p.payload + "." + base64url_encode(zeros), "invalid signature");
  expect_rejected(*ring_, p.header + "." + p.payload + "." + base64url_encode(raw.substr(0, 63)),
                  "invalid signature");
  expect_rejected(*ring_, p.header + "." + p.payload + "." + base64url_encode(raw + '\0'),
                  "invalid signature");
  // The signature of another token (a fresh signature of the same claims would be valid: ECDSA is
  // randomized).
  TokenClaims other = full_claims();
  other.jti = "another";
  const Parts q = split(ring_->sign(other));
  expect_rejected(*ring_, p.header + "." + p.payload + "." + q.sig, "invalid signature");
}

TEST_F(AuthTokensTest, DerSignatureIsRejected) {
  const std::string input = base64url_encode(header("ES256")) + "." + base64url_encode(full_payload().dump());
  const std::string der = der_sign(key_.private_pem, input);
  ASSERT_TRUE(der_verify(key_.private_pem, input, der));  // a genuine signature, only in the wrong encoding
  expect_rejected(*ring_, input + "." + base64url_encode(der), "invalid signature");
  EXPECT_EQ(ring_->verify(input + "." + base64url_encode(der_to_raw(der)), opts()).sub, "user-1");
}

// ---- claims ----

TEST_F(AuthTokensTest, ExpiryHonoursLeeway) {
  TokenClaims c = full_claims();
  const std::string token = ring_->sign(c);
  EXPECT_NO_THROW(ring_->verify(token, opts(c.exp + 30)));
  expect_rejected(*ring_, token, "token expired", opts(c.exp + 31));
  VerifyOptions strict = opts(c.exp + 1);
  strict.leeway_seconds = 0;
  expect_rejected(*ring_, token, "token expired", strict);
}

TEST_F(AuthTokensTest, ExpMustBePresentAndNumeric) {
  json p = full_payload();
  p.erase("exp");
  expect_rejected(*ring_, forge_payload(p), "missing exp");
  for (const json& exp : {json("9999999999"), json(nullptr), json::array({kNow + 900}), json(true)}) {
    p["exp"] = exp;
    expect_rejected(*ring_, forge_payload(p), "invalid exp");
  }
  p["exp"] = kNow + 900.5;  // NumericDate may carry a fraction
  EXPECT_EQ(ring_->verify(forge_payload(p), opts()).exp, kNow + 900);
  p["exp"] = -1;
  expect_rejected(*ring_, forge_payload(p), "token expired");
  p["exp"] = std::numeric_limits<uint64_t>::max();  // absurd but numeric: saturates, no overflow
  EXPECT_NO_THROW(ring_->verify(forge_payload(p), opts()));
  p["exp"] = std::numeric_limits<int64_t>::min();
  expect_rejected(*ring_, forge_payload(p), "token expired");
  // 1e400 overflows a double: the JSON parser must not hand us infinity as a date.
  std::string text = full_payload().dump();
  text.replace(text.find(std::to_string(kNow + 900)), 10, "1e400");
  expect_rejected(*ring_, forge(key_.private_pem, header("ES256"), text), "invalid");
}

TEST_F(AuthTokensTest, NotBeforeIsHonoured) {
  json p = full_payload();
  p["nbf"] = kNow + 31;
  expect_rejected(*ring_, forge_payload(p), "not yet valid");
  p["nbf"] = kNow + 30;
  EXPECT_NO_THROW(ring_->verify(forge_payload(p), opts()));
  p["nbf"] = "now";
  expect_rejected(*ring_, forge_payload(p), "invalid nbf");
}

TEST_F(AuthTokensTest, IatInTheFutureIsRejected) {
  TokenClaims c = full_claims();
  c.iat = kNow + 31;
  expect_rejected(*ring_, ring_->sign(c), "issued in the future");
  c.iat = kNow + 30;
  EXPECT_NO_THROW(ring_->verify(ring_->sign(c), opts()));
  json p = full_payload();
  p.erase("iat");
  expect_rejected(*ring_, forge_payload(p), "missing iat");  // access tokens always carry iat
  EXPECT_NO_THROW(ring_->verify_json(forge_payload(p), opts()));
}

TEST_F(AuthTokensTest, WrongAudienceIsRejected) {
  TokenClaims c = full_claims();
  c.aud = "cdx-admin";
  expect_rejected(*ring_, ring_->sign(c), "invalid audience");
  json p = full_payload();
  p["aud"] = json::array({"a", kAudience, "b"});
  EXPECT_EQ(ring_->verify(forge_payload(p), opts()).aud, kAudience);
  for (const json& aud : {json::array({"a", "b"}), json::array(), json(nullptr), json(1),
                          json{{"aud", kAudience}}, json("CDX-API"), json(std::string(kAudience) + " ")}) {
    p["aud"] = aud;
    expect_rejected(*ring_, forge_payload(p), "invalid audience");
  }
  p.erase("aud");
  expect_rejected(*ring_, forge_payload(p), "invalid audience");
}

TEST_F(AuthTokensTest, WrongIssuerIsRejected) {
  TokenClaims c = full_claims();
  c.iss = "https://evil.test";
  expect_rejected(*ring_, ring_->sign(c), "invalid issuer");
  json p = full_payload();
  p.erase("iss");
  expect_rejected(*ring_, forge_payload(p), "invalid issuer");
  p["iss"] = json::array({kIssuer});
  expect_rejected(*ring_, forge_payload(p), "invalid issuer");
}

TEST_F(AuthTokensTest, ClaimsOfTheWrongTypeAreRejected) {
  for (const char* name : {"sub", "jti", "tid", "role", "scope"}) {
    json p = full_payload();
    p[name] = 42;
    expect_rejected(*ring_, forge_payload(p), std::string("invalid ") + name);
  }
  json p = full_payload();
  p.erase("sub");
  expect_rejected(*ring_, forge_payload(p), "missing sub");
}

// ---- malformed input ----

TEST_F(AuthTokensTest, MalformedTokensAreRejected) {
  const std::string token = ring_->sign(full_claims());
  const Parts p = split(token);
  expect_rejected(*ring_, "", "malformed token");
  expect_rejected(*ring_, ".", "malformed token");
  expect_rejected(*ring_, "..", "malformed token");
  expect_rejected(*ring_, "...", "malformed token");
  expect_rejected(*ring_, p.header + "." + p.payload, "malformed token");     // 2 parts
  expect_rejected(*ring_, token + "." + p.sig, "malformed token");            // 4 parts
  expect_rejected(*ring_, token + ".", "malformed token");                    // 4 parts, last empty
  expect_rejected(*ring_, "." + p.payload + "." + p.sig, "malformed token");  // empty header
  expect_rejected(*ring_, p.header + ".." + p.sig, "malformed token");        // empty payload
  expect_rejected(*ring_, "Bearer " + token, "malformed token");              // space is not base64url
  expect_rejected(*ring_, token + "\n", "invalid signature");
  expect_rejected(*ring_, p.header + "=." + p.payload + "." + p.sig, "malformed token");  // padding
  expect_rejected(*ring_, p.header + "." + p.payload + "." + p.sig + "==", "invalid signature");
  std::string std_b64 = p.header;  // standard alphabet instead of URL-safe
  std_b64.back() = '+';
  expect_rejected(*ring_, std_b64 + "." + p.payload + "." + p.sig, "malformed token");
  expect_rejected(*ring_, "e30." + p.payload + "." + p.sig, "missing key id");  // header "{}"
  expect_rejected(*ring_, base64url_encode("[1,2]") + "." + p.payload + "." + p.sig, "invalid token header");
  expect_rejected(*ring_, base64url_encode("\"ES256\"") + "." + p.payload + "." + p.sig,
                  "invalid token header");
  expect_rejected(*ring_, base64url_encode("{\"alg\":") + "." + p.payload + "." + p.sig,
                  "invalid token header");
  expect_rejected(*ring_, base64url_encode("{\"kid\":\"\xff\xfe\"}") + "." + p.payload + "." + p.sig,
                  "invalid token header");  // not UTF-8
  expect_rejected(*ring_, base64url_encode(std::string("{\0}", 3)) + "." + p.payload + "." + p.sig,
                  "invalid token header");
  // Non-canonical base64url (the trailing bits of the last character set) would make tokens malleable.
  std::string loose = p.sig;
  ASSERT_EQ(loose.size() % 4, 2u);
  loose.back() = static_cast<char>(loose.back() == 'A' ? 'B' : loose.back() ^ 1);
  expect_rejected(*ring_, p.header + "." + p.payload + "." + loose, "invalid signature");
}

TEST_F(AuthTokensTest, ValidlySignedButMalformedPayloadsAreRejected) {
  const std::string h = header("ES256");
  for (const char* text :
       {"[]", "\"sub\"", "42", "null", " ", "{", "{\"exp\":1e400", "{\"sub\":\"\xc3\x28\"}"}) {
    expect_rejected(*ring_, forge(key_.private_pem, h, text), "invalid token payload");
  }
}

TEST_F(AuthTokensTest, OversizedTokenIsRejectedBeforeDecoding) {
  json p = full_payload();
  p["pad"] = std::string(7000, 'x');
  const std::string big = forge_payload(p);
  ASSERT_GT(big.size(), kMaxTokenBytes);
  expect_rejected(*ring_, big, "too large");
  expect_rejected(*ring_, std::string(1 << 20, 'A'), "too large");
  p["pad"] = std::string(5000, 'x');
  const std::string fits = forge_payload(p);
  ASSERT_LE(fits.size(), kMaxTokenBytes);
  EXPECT_NO_THROW(ring_->verify(fits, opts()));
}

TEST_F(AuthTokensTest, GarbageAndMutationsNeverCrashAndAlwaysReject) {
  std::mt19937 rng(20260101);
  const std::string token = ring_->sign(full_claims());
  const std::string alphabet =
      std::string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ") + '\0' + '\xff';
  int rejected = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string t;
    if (i % 3 == 0) {  // random bytes
      t.resize(rng() % 400);
      for (char& ch : t) ch = static_cast<char>(rng());
    } else {  // a valid token with one to three characters replaced, inserted or removed
      t = token;
      for (int n = 1 + static_cast<int>(rng() % 3); n > 0; --n) {
        const size_t at = rng() % t.size();
        const char ch = alphabet[rng() % alphabet.size()];
        switch (rng() % 3) {
          case 0:
            t[at] = ch;
            break;
          case 1:
            t.insert(t.begin() + static_cast<long>(at), ch);
            break;
          default:
            t.erase(at, 1);
        }
      }
      if (t == token) continue;
    }
    try {
      ring_->verify(t, opts());
      ADD_FAILURE() << "accepted a mutated token: " << t;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Code::kUnauthorized);
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 2900);
}

// ---- rotation and JWKS ----

TEST(AuthKeyRotationTest, OldTokensVerifyAfterRotation) {
  init_crypto();
  SigningKey old_key = generate_signing_key(kNow - 86400);
  const KeyRing before({old_key});
  const std::string old_token = before.sign(full_claims());

  SigningKey new_key = generate_signing_key(kNow);
  old_key.active = false;
  const KeyRing after({old_key, new_key});
  EXPECT_EQ(after.active_kid(), new_key.kid);
  EXPECT_EQ(after.verify(old_token, opts()).sub, full_claims().sub);

  const std::string new_token = after.sign(full_claims());
  EXPECT_EQ(json::parse(decode(split(new_token).header)).at("kid"), new_key.kid);
  EXPECT_EQ(after.verify(new_token, opts()).sub, full_claims().sub);
  EXPECT_THROW(before.verify(new_token, opts()), Error);  // the old ring has never heard of the new key

  const KeyRing retired({new_key});  // the old key dropped once its tokens have expired
  expect_rejected(retired, old_token, "unknown key id");
}

TEST(AuthJwksTest, PublishesEveryPublicKeyAndNoPrivateMaterial) {
  init_crypto();
  SigningKey a = generate_signing_key(kNow - 86400);
  a.active = false;
  const SigningKey b = generate_signing_key(kNow);
  const KeyRing ring({a, b});
  const std::string text = ring.jwks_json();
  const json jwks = json::parse(text);
  ASSERT_TRUE(jwks.at("keys").is_array());
  ASSERT_EQ(jwks["keys"].size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const json& jwk = jwks["keys"][i];
    EXPECT_EQ(jwk.at("kid"), (i == 0 ? a : b).kid);
    EXPECT_EQ(jwk, json::parse((i == 0 ? a : b).public_jwk));
    EXPECT_FALSE(jwk.contains("d"));
    EXPECT_EQ(jwk.size(), 7u);  // kty crv x y kid alg use, nothing else
  }
  EXPECT_EQ(text.find("\"d\""), std::string::npos);
  EXPECT_EQ(text.find("PRIVATE"), std::string::npos);

  // The published keys are enough to verify what the ring signs.
  const KeyRing verifier = KeyRing::from_jwks(text);
  EXPECT_FALSE(verifier.can_sign());
  EXPECT_EQ(verifier.jwks_json(), text);
  EXPECT_EQ(verifier.verify(ring.sign(full_claims()), opts()).role, "ADMIN");
  SigningKey a_active = a;
  a_active.active = true;
  const std::string by_a = KeyRing({a_active}).sign(full_claims());
  EXPECT_EQ(verifier.verify(by_a, opts()).tid, full_claims().tid);
}

TEST(AuthJwksTest, FromJwksSkipsForeignKeysAndRejectsBrokenOnes) {
  init_crypto();
  const SigningKey k = generate_signing_key(kNow);
  const json ours = json::parse(k.public_jwk);
  const json rsa = {{"kty", "RSA"}, {"kid", "r1"}, {"n", "AQAB"}, {"e", "AQAB"}};
  const KeyRing ring = KeyRing::from_jwks(json{{"keys", json::array({rsa, ours})}}.dump());
  EXPECT_EQ(json::parse(ring.jwks_json())["keys"].size(), 1u);

  json off_curve = ours;
  std::string y = decode(ours.at("y").get<std::string>());
  y[31] = static_cast<char>(y[31] ^ 1);
  off_curve["y"] = base64url_encode(y);
  for (const std::string& doc :
       {json{{"keys", json::array({off_curve})}}.dump(), json{{"keys", json::array({rsa})}}.dump(),
        std::string("[]"), std::string("{\"keys\":7}"), std::string("not json"),
        json{{"keys", json::array({json{{"kty", 1}}})}}.dump()}) {
    try {
      KeyRing::from_jwks(doc);
      ADD_FAILURE() << "accepted " << doc;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Code::kInternal) << doc;
    }
  }
}

// ---- interoperability ----

// Produced by PyJWT 2.6.0 (cryptography 38) with a throwaway key generated for this vector only.
const char kPyJwtPem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgdkFAFdFYJzCJxTO+\n"
    "BRjBrf4eKlodU04ckOnqdzbsHhmhRANCAAQfxe9DXFf/wylJcA/BjBidhd5nVy6u\n"
    "YP3NptDfOBxs+g2m5OfZ9DLaU005KsrMs7RfokVZ0QB0MREAmVzkScNT\n"
    "-----END PRIVATE KEY-----\n";
const char kPyJwtJwk[] = R"({"kty":"EC","crv":"P-256","x":"H8XvQ1xX_8MpSXAPwYwYnYXeZ1curmD9zabQ3zgcbPo",)"
                         R"("y":"Dabk59n0MtpTTTkqysyztF-iRVnRAHQxEQCZXORJw1M"})";
const char kPyJwtToken[] =
    "eyJhbGciOiJFUzI1NiIsImtpZCI6InB5and0LXZlY3Rvci0xIiwidHlwIjoiSldUIn0."
    "eyJpc3MiOiJodHRwczovL2F1dGguZXhhbXBsZSIsInN1YiI6InVzZXItNDIiLCJhdWQiOlsib3RoZXIiLCJjZHgtYXBpIl0sImlhdCI6"
    "MTc2"
    "NzIyNTYwMCwiZXhwIjoxNzY3MjI2NTAwLCJqdGkiOiJqdGktcHktMSIsInRpZCI6InRlbmFudC03Iiwicm9sZSI6IkFETUlOIiwic2Nv"
    "cGUi"
    "OiJjcm06cmVhZCBjcm06d3JpdGUiLCJlbWFpbF92ZXJpZmllZCI6dHJ1ZX0."
    "l6gE7kbudPx43l6zOPIKiQM7xlGgSEjTex-1NLaCcJ5D0Fhs-RzyALQQ9u0p-96YmO-7CWRZG3g5JJ2MPnRkXw";

TEST(AuthTokensInteropTest, VerifiesATokenSignedByPyJwt) {
  const VerifyOptions o{"https://auth.example", "cdx-api", 1767225600 + 60, 30};
  const TokenClaims expected{.iss = "https://auth.example",
                             .sub = "user-42",
                             .aud = "cdx-api",
                             .jti = "jti-py-1",
                             .tid = "tenant-7",
                             .role = "ADMIN",
                             .scope = "crm:read crm:write",
                             .iat = 1767225600,
                             .exp = 1767226500,
                             .extra = {{"email_verified", true}}};
  auto check = [&](const KeyRing& ring) {
    const TokenClaims c = ring.verify(kPyJwtToken, o);
    EXPECT_EQ(c.iss, expected.iss);
    EXPECT_EQ(c.sub, expected.sub);
    EXPECT_EQ(c.aud, expected.aud);
    EXPECT_EQ(c.jti, expected.jti);
    EXPECT_EQ(c.tid, expected.tid);
    EXPECT_EQ(c.role, expected.role);
    EXPECT_EQ(c.scope, expected.scope);
    EXPECT_EQ(c.iat, expected.iat);
    EXPECT_EQ(c.exp, expected.exp);
    EXPECT_EQ(c.extra, expected.extra);
  };
  check(KeyRing({SigningKey{"pyjwt-vector-1", "ES256", kPyJwtPem, "", 0, true}}));
  check(KeyRing({SigningKey{"pyjwt-vector-1", "ES256", "", kPyJwtJwk, 0, false}}));  // public JWK only
  expect_rejected(KeyRing({SigningKey{"pyjwt-vector-1", "ES256", kPyJwtPem, "", 0, true}}), kPyJwtToken,
                  "token expired", VerifyOptions{o.issuer, o.audience, 1767226500 + 31, 30});
}

// ---- concurrency: one shared immutable ring ----

TEST_F(AuthTokensTest, SharedRingSignsAndVerifiesFromManyThreads) {
  const std::shared_ptr<const KeyRing> ring = std::make_shared<const KeyRing>(std::vector<SigningKey>{key_});
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        TokenClaims c = full_claims();
        c.sub = "user-" + std::to_string(t) + "-" + std::to_string(i);
        try {
          if (ring->verify(ring->sign(c), opts()).sub == c.sub) ++ok;
        } catch (...) {
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 200);
}

}  // namespace
}  // namespace cdx::auth
