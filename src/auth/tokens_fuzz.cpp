// libFuzzer target: access-token (JWT, ES256) parsing and verification (auth/tokens.hpp). The first
// byte picks what the rest is:
//   0  a token as a client sends it;
//   1  a header and a payload (JSON text, or anything) the harness signs with the ring's key, so that the
//      fuzzer reaches the claim checks behind the signature;
//   2  claims the ring signs itself (KeyRing::sign).
// Checks: every failure is cdx::Error(kUnauthorized); a token that verifies keeps the rules (alg pinned to
// ES256 for the key, iss and aud as asked, not expired, not issued or valid only in the future, a subject);
// its claims signed again verify to the same claims; and changing any one byte of it makes it fail.
#include <fuzzer/FuzzedDataProvider.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "auth/tokens.hpp"
#include "common/error.hpp"
#include "common/ids.hpp"

namespace {

using namespace cdx;
using namespace cdx::auth;
using nlohmann::json;

constexpr char kKid[] = "fuzz-key-1";
// A fixed key, so that the committed corpus holds tokens that verify. Test material only.
constexpr char kPem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg7NatYuSxyljPTIXr\n"
    "QQHL6+2pINwk0HicdbVMZIM9BtihRANCAATc7YWJldsR9lK5Ig2xYKgEeSQcpEOx\n"
    "bENjdGhNg8TRgLpGJgDKbwCKKf7iOj71VnnrvlV/RF2xDhrrxIJ6PAnY\n"
    "-----END PRIVATE KEY-----\n";
constexpr int64_t kNow = 1'800'000'000;
const VerifyOptions kOptions{.issuer = "https://cdx.example", .audience = "cdx-api", .now = kNow};

void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "tokens_fuzz: %s\n", what);
  std::abort();
}

struct Fixture {
  KeyRing ring;
  EVP_PKEY* key = nullptr;  // the same key, for signing what the fuzzer writes
  Fixture()
      : ring(std::vector<SigningKey>{{.kid = kKid, .alg = "ES256", .private_pem = kPem, .active = true}}) {
    BIO* bio = BIO_new_mem_buf(kPem, -1);
    key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    require(key != nullptr, "the fixed key does not load");
  }
};
const Fixture& fixture() {
  static const bool crypto = (init_crypto(), true);
  static const Fixture f;
  (void)crypto;
  return f;
}

// <header>.<payload>.<ES256 signature> over any bytes: what a holder of the key could sign.
std::string sign_raw(const std::string& header, const std::string& payload) {
  std::string token = base64url_encode(header) + "." + base64url_encode(payload);
  unsigned char der[80];
  size_t der_len = sizeof der;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool signed_ok =
      EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, fixture().key) == 1 &&
      EVP_DigestSign(ctx, der, &der_len, reinterpret_cast<const unsigned char*>(token.data()),
                     token.size()) == 1;
  EVP_MD_CTX_free(ctx);
  require(signed_ok, "signing failed");
  const unsigned char* p = der;
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len));
  require(sig != nullptr, "unreadable signature");
  unsigned char raw[64];
  require(BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32) == 32 &&
              BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32) == 32,
          "signature too long");
  ECDSA_SIG_free(sig);
  return token + "." + base64url_encode(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
}

std::optional<TokenClaims> verify(const std::string& token) {
  try {
    return fixture().ring.verify(token, kOptions);
  } catch (const Error& e) {
    require(e.code() == Code::kUnauthorized, "a token failure that is not 401");
    return std::nullopt;
  }
}

bool same(const TokenClaims& a, const TokenClaims& b) {
  return a.iss == b.iss && a.sub == b.sub && a.aud == b.aud && a.jti == b.jti && a.tid == b.tid &&
         a.role == b.role && a.scope == b.scope && a.iat == b.iat && a.exp == b.exp && a.extra == b.extra;
}

// What must hold of a token that verified.
void check_verified(const std::string& token, const TokenClaims& c, size_t flip_at, uint8_t flip_to) {
  const size_t dot = token.find('.');
  std::string header_text;
  require(base64url_decode(std::string_view(token).substr(0, dot), header_text), "header is not base64url");
  const json header = json::parse(header_text, nullptr, false);
  require(header.is_object() && header.value("alg", "") == "ES256" && header.value("kid", "") == kKid &&
              !header.contains("crit"),
          "a header the key does not allow");
  require(c.iss == kOptions.issuer && c.aud == kOptions.audience, "iss or aud not as asked");
  require(c.exp >= kNow - kOptions.leeway_seconds, "an expired token");
  require(c.iat <= kNow + kOptions.leeway_seconds, "a token issued in the future");
  require(!c.sub.empty(), "a token without a subject");
  if (c.extra.is_object() && c.extra.contains("nbf")) {
    const json& nbf = c.extra["nbf"];
    require(nbf.is_number() && nbf.get<double>() <= static_cast<double>(kNow + kOptions.leeway_seconds + 1),
            "a token not yet valid");
  }
  // Its claims signed again verify to the same claims.
  const std::string again = fixture().ring.sign(c);
  std::optional<TokenClaims> back = verify(again);
  require(back.has_value(), "verified claims signed again do not verify");
  if (c.jti.empty()) {  // sign() gives a token without one a fresh jti
    require(!back->jti.empty(), "a token signed without a jti has none");
    back->jti.clear();
  }
  require(same(*back, c), "verified claims do not survive signing again");
  // Any other byte anywhere makes another token, and no other token verifies.
  std::string changed = token;
  const size_t at = flip_at % changed.size();
  changed[at] = static_cast<char>(flip_to == static_cast<uint8_t>(changed[at]) ? flip_to ^ 1 : flip_to);
  require(!verify(changed), "a token changed in one byte still verifies");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const uint8_t mode = in.ConsumeIntegral<uint8_t>() % 3;
  const size_t flip_at = in.ConsumeIntegral<uint16_t>();
  const uint8_t flip_to = in.ConsumeIntegral<uint8_t>();
  std::string token;
  if (mode == 0) {
    token = in.ConsumeRemainingBytesAsString();
  } else if (mode == 1) {
    const std::string header = in.ConsumeRandomLengthString(512);
    token = sign_raw(header, in.ConsumeRemainingBytesAsString());
  } else {
    TokenClaims c;
    c.iss = kOptions.issuer;
    c.aud = kOptions.audience;
    c.sub = in.ConsumeRandomLengthString(64);
    c.tid = in.ConsumeRandomLengthString(64);
    c.role = in.ConsumeRandomLengthString(16);
    c.scope = in.ConsumeRandomLengthString(64);
    c.jti = in.ConsumeRandomLengthString(64);
    c.iat = kNow - in.ConsumeIntegralInRange<int64_t>(-60, 3600);
    c.exp = kNow + in.ConsumeIntegralInRange<int64_t>(-60, 3600);
    c.extra = json::parse(in.ConsumeRemainingBytesAsString(), nullptr, false);
    if (!c.extra.is_object()) c.extra = nullptr;
    try {
      token = fixture().ring.sign(c);
    } catch (const Error& e) {
      require(e.code() == Code::kInternal, "signing failed with other than a configuration error");
      return 0;  // claims that are not UTF-8
    }
    const std::optional<TokenClaims> back = verify(token);
    const bool valid = !c.sub.empty() && c.iat <= kNow + 30 && c.exp >= kNow - 30 &&
                       !(c.extra.is_object() && c.extra.contains("nbf"));
    if (valid) require(back.has_value(), "a token the ring signed does not verify");
  }
  if (token.empty()) return 0;
  if (const std::optional<TokenClaims> c = verify(token)) check_verified(token, *c, flip_at, flip_to);
  return 0;
}
