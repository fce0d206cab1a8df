// The check of a service behind the gateway (constellation topology): every request must carry the
// gateway's signed assertion (X-CDX-Assertion); the principal and tenant come from it, and the route's
// declared access is enforced again here. Only /health, /metrics and /openapi.json answer without one.
//   AssertionAuthenticator authn(key);
//   http::Server server({.authenticate_public = true}, router, metrics, &authn.chain());
#pragma once
#include "common/local_cache.hpp"
#include "http/assertion.hpp"
#include "http/middleware.hpp"

namespace cdx::auth {

class AssertionAuthenticator final : public http::Step {
 public:
  explicit AssertionAuthenticator(const http::AssertionKey& key) : key_(key) { chain_.add(*this); }
  std::string_view name() const override { return "assertion"; }
  bool check(http::Context& ctx, const http::Route& route) const override;
  // The service's chain: the assertion (principal, tenant, access). The gateway ran the rest.
  const http::Chain& chain() const { return chain_; }

 private:
  struct Verified {
    http::Assertion::Kind kind;
    std::shared_ptr<const Principal> principal;   // kPrincipal
    std::optional<db::TenantScope> tenant;        // the tenant the request acts in
  };
  std::shared_ptr<const Verified> verify(std::string_view token) const;

  const http::AssertionKey& key_;
  mutable LocalCache<Verified> verified_{10'000};
  http::Chain chain_;
};

}  // namespace cdx::auth
