#include "auth/tokens.hpp"

#include <benchmark/benchmark.h>

#include <memory>

#include "common/error.hpp"
#include "common/ids.hpp"

namespace cdx::auth {
namespace {

constexpr int64_t kNow = 1767225600;

// One ring for every benchmark, built once (key generation needs libsodium for the kid).
const KeyRing& ring() {
  static const std::unique_ptr<const KeyRing> r = [] {
    init_crypto();
    SigningKey old_key = generate_signing_key(kNow - 86400);
    old_key.active = false;
    return std::make_unique<const KeyRing>(std::vector<SigningKey>{old_key, generate_signing_key(kNow)});
  }();
  return *r;
}

TokenClaims claims() {
  TokenClaims c;
  c.iss = "https://auth.cdx.test";
  c.sub = "0193a000-0000-7000-8000-000000000001";
  c.aud = "cdx-api";
  c.jti = "0193a000-0000-7000-8000-0000000000ff";
  c.tid = "0193a000-0000-7000-8000-000000000002";
  c.role = "ADMIN";
  c.scope = "crm:read crm:write billing:read";
  c.iat = kNow;
  c.exp = kNow + 900;
  return c;
}

const VerifyOptions kOpts{"https://auth.cdx.test", "cdx-api", kNow, 30};

void BM_JwtSign(benchmark::State& state) {
  const KeyRing& r = ring();
  const TokenClaims c = claims();
  for (auto _ : state) benchmark::DoNotOptimize(r.sign(c));
}
BENCHMARK(BM_JwtSign)->ThreadRange(1, 2)->UseRealTime();

void BM_JwtVerify(benchmark::State& state) {
  const KeyRing& r = ring();
  const std::string token = r.sign(claims());
  for (auto _ : state) benchmark::DoNotOptimize(r.verify(token, kOpts));
}
BENCHMARK(BM_JwtVerify)->ThreadRange(1, 2)->UseRealTime();

void BM_JwtVerifyJson(benchmark::State& state) {
  const KeyRing& r = ring();
  const std::string token = r.sign(claims());
  for (auto _ : state) benchmark::DoNotOptimize(r.verify_json(token, kOpts));
}
BENCHMARK(BM_JwtVerifyJson);

// What a forged token costs us: header parsed, signature checked, payload never parsed.
void BM_JwtRejectBadSignature(benchmark::State& state) {
  const KeyRing& r = ring();
  std::string token = r.sign(claims());
  token[token.size() - 10] = token[token.size() - 10] == 'A' ? 'B' : 'A';
  for (auto _ : state) {
    try {
      r.verify(token, kOpts);
    } catch (const Error& e) {
      benchmark::DoNotOptimize(e.code());
    }
  }
}
BENCHMARK(BM_JwtRejectBadSignature);

// Garbage is turned away before any cryptography.
void BM_JwtRejectGarbage(benchmark::State& state) {
  const KeyRing& r = ring();
  const std::string token = "eyJhbGciOiJub25lIn0.e30.";
  for (auto _ : state) {
    try {
      r.verify(token, kOpts);
    } catch (const Error& e) {
      benchmark::DoNotOptimize(e.code());
    }
  }
}
BENCHMARK(BM_JwtRejectGarbage);

void BM_KeyRingBuild(benchmark::State& state) {
  init_crypto();
  SigningKey a = generate_signing_key(kNow - 86400);
  a.active = false;
  const std::vector<SigningKey> keys{a, generate_signing_key(kNow)};
  for (auto _ : state) benchmark::DoNotOptimize(KeyRing(keys).active_kid().size());
}
BENCHMARK(BM_KeyRingBuild);

void BM_GenerateSigningKey(benchmark::State& state) {
  init_crypto();
  for (auto _ : state) benchmark::DoNotOptimize(generate_signing_key(kNow));
}
BENCHMARK(BM_GenerateSigningKey);

}  // namespace
}  // namespace cdx::auth
