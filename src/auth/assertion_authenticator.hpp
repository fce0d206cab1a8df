// The check of a service behind the gateway (constellation topology): every request must carry the
// gateway's signed assertion (X-CDX-Assertion); the principal and tenant come from it, and the route's
// declared access is enforced again here. Only /health, /metrics and /openapi.json answer without one.
//   AssertionAuthenticator authn(key);
//   http::Server server({.authenticate_public = true}, router, metrics, &authn);
#pragma once
#include "common/local_cache.hpp"
#include "gateway/assertion.hpp"
#include "http/server.hpp"

namespace cdx::auth {

class AssertionAuthenticator final : public http::Authenticator {
 public:
  explicit AssertionAuthenticator(const gateway::AssertionKey& key) : key_(key) {}
  Task<void> authenticate(http::Context& ctx, const http::RouteDoc& route) override;

 private:
  struct Verified {
    gateway::Assertion::Kind kind;
    std::shared_ptr<const Principal> principal;   // kPrincipal
    std::optional<db::TenantScope> tenant;        // the tenant the request acts in
  };
  std::shared_ptr<const Verified> verify(std::string_view token) const;

  const gateway::AssertionKey& key_;
  LocalCache<Verified> verified_{10'000};
};

}  // namespace cdx::auth
