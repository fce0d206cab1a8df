// The gateway's signed assertion: who is calling and in which tenant, forwarded to a service of the
// constellation in the X-CDX-Assertion header. HMAC-SHA256 over the payload with the shared internal
// secret, short-lived (15 s), and bound to one request's method and target by a keyed hash, so a captured
// header opens nothing but the very request it came with, and only for seconds. A service never trusts an
// unsigned header: without a valid, bound assertion it answers 401.
//   AssertionKey key(config.internal_secret);
//   std::string a = key.sign({.kind = Assertion::Kind::kPrincipal, .principal = p, .tenant_id = t}, now);
//   if (auto got = key.verify(header, Clock::unix_seconds())) …
#pragma once
#include <sodium.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/principal.hpp"

namespace cdx::http {

inline constexpr std::string_view kAssertionHeader = "X-CDX-Assertion";
inline constexpr int64_t kAssertionTtlSeconds = 15;
// A service behind the gateway answers with this header when it changed credentials or tenants; the
// gateway drops its caches before the client sees the answer, and strips the header.
inline constexpr std::string_view kInvalidateHeader = "X-CDX-Invalidate";
inline constexpr std::string_view kInvalidateLine = "X-CDX-Invalidate: credentials\r\n";

struct Assertion {
  enum class Kind { kAnonymous, kPrincipal, kService };
  Kind kind = Kind::kAnonymous;
  Principal principal;     // kPrincipal; its `scope` is left empty (the receiver mints it)
  std::string service;     // kService: the calling service's name
  std::string tenant_id;   // the tenant the request acts in; empty when none
  int64_t expires_at = 0;  // unix seconds
};

class AssertionKey {
 public:
  // Throws std::invalid_argument on a secret shorter than 32 bytes.
  explicit AssertionKey(std::string_view secret);

  // "v1.<base64url payload>.<base64url HMAC>"; expires kAssertionTtlSeconds after `now`.
  std::string sign(const Assertion& a, int64_t now) const;
  // nullopt when malformed, forged or expired.
  std::optional<Assertion> verify(std::string_view token, int64_t now) const;
  // The header value for one request: "<assertion>~<hex keyed BLAKE2b over the assertion's MAC, method and
  // target>". The signed assertion can be cached per principal; the binding costs one BLAKE2b block.
  std::string bind(std::string_view assertion, std::string_view method, std::string_view target) const;
  void bind_to(std::string& out, std::string_view assertion, std::string_view method,
               std::string_view target) const;
  // The assertion inside a bound header when its binding matches this method and target; empty otherwise.
  std::string_view unbind(std::string_view header, std::string_view method, std::string_view target) const;

 private:
  std::array<unsigned char, 32> key_{};
  std::shared_ptr<const crypto_generichash_state> bind_state_;  // keyed once; copied per binding
};

}  // namespace cdx::http
