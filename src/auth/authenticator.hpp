// Turns a request's credential (X-API-Key or Bearer JWT) into a Principal and its tenant, enforcing
// each route's declared Access. Answers from per-thread caches (TTL 5 s, dropped at once on revocation
// or a tenant change), so a known credential costs no database call, no lock and no allocation.
//   http::Server server(opts, router, metrics, &authenticator);
#pragma once
#include <memory>

#include "auth/service.hpp"
#include "common/local_cache.hpp"
#include "common/worker_pool.hpp"
#include "gateway/rate_limiter.hpp"
#include "http/server.hpp"

namespace cdx::auth {

struct CachedTenant {
  std::string id, slug, status, plan;
  std::vector<std::string> allowed_origins;  // settings.allowed_origins: where publishable keys may be used
  std::optional<db::TenantScope> scope;
  std::shared_ptr<gateway::Bucket> bucket;   // the tenant's rate limit (plan.rate_limit_per_minute)
};

class Authenticator final : public http::Authenticator {
 public:
  Authenticator(Service& service, core::Api& core, WorkerPool& workers)
      : service_(service), core_(core), workers_(workers) {}

  Task<void> authenticate(http::Context& ctx, const http::RouteDoc& route) override;

  // The tenant a publishable key (cdx_pk_…) identifies, for endpoints that take one instead of a
  // credential (login, sign-up). Throws 401 when the key is not valid.
  Task<std::string> tenant_of_publishable_key(http::Context& ctx);

  // Credentials or tenants changed: every thread re-checks before its next request.
  void invalidate() const {
    keys_.invalidate_all();
    tokens_.invalidate_all();
    tenants_.invalidate_all();
    sessions_.invalidate_all();
  }

 private:
  struct CachedKey {
    unsigned char digest[32];
    std::optional<int64_t> expires_at;
    std::shared_ptr<const Principal> principal;
    std::shared_ptr<gateway::Bucket> bucket;  // the key's own rate limit
    mutable std::atomic<int64_t> last_noted_ms{0};  // last_used_at is recorded at most once a minute
  };
  // The key's bucket comes back through `bucket` so the caller can rate-limit without a second lookup.
  Task<std::shared_ptr<const Principal>> from_api_key(std::string_view key, gateway::Bucket** bucket = nullptr);
  static void limit(http::Context& ctx, gateway::Bucket* key_bucket, gateway::Bucket* tenant_bucket);
  std::shared_ptr<const Principal> from_bearer(std::string_view token);
  Task<std::shared_ptr<const CachedTenant>> tenant(std::string_view id_or_slug);
  std::shared_ptr<const CachedTenant> remember_tenant(const core::TenantInfo& info) const;
  static void check_origin(const http::Context& ctx, const CachedTenant& t);
  // CORS: grants the request's Origin when it is one of the tenant's allowed_origins.
  static void allow_origin(http::Context& ctx, const CachedTenant& t);

  Service& service_;
  core::Api& core_;
  WorkerPool& workers_;
  LocalCache<CachedKey> keys_;
  LocalCache<Principal> tokens_{10'000};
  LocalCache<CachedTenant> tenants_;
  LocalCache<SessionState> sessions_;
  mutable gateway::RateLimiter limiter_;
};

}  // namespace cdx::auth
