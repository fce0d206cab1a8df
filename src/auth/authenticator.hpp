// Turns a request's credential (X-API-Key or Bearer JWT) into a Principal and its tenant, enforcing
// each route's declared Access, as steps of the middleware chain. Answers from per-thread caches (TTL 5 s,
// dropped at once on revocation or a tenant change), so a known credential costs no database call, no
// lock and no allocation.
//   http::Server server(opts, router, metrics, &authenticator.chain());
#pragma once
#include <memory>

#include "auth/service.hpp"
#include "common/local_cache.hpp"
#include "common/worker_pool.hpp"
#include "http/assertion.hpp"
#include "kit/rate_limiter.hpp"
#include "kit/usage_meter.hpp"
#include "http/middleware.hpp"
#include "http/server.hpp"

namespace cdx::auth {

struct CachedTenant {
  std::string id, slug, status, plan;
  std::vector<std::string> allowed_origins;  // settings.allowed_origins: where publishable keys may be used
  std::optional<db::TenantScope> scope;
  std::shared_ptr<kit::Bucket> bucket;   // the tenant's rate limit (plan.rate_limit_per_minute)
  std::shared_ptr<kit::UsageCounter> usage;  // calls without an API key (null when not metered)
  std::vector<std::string> modules;              // the plan's modules
};

// Where the Authenticator looks a credential up on a cache miss: auth's own store in the monolith and in
// the auth service; the auth and core services over HTTP in the constellation's gateway. The lookups
// block: the Authenticator runs them on its worker pool.
class CredentialSource {
 public:
  virtual ~CredentialSource() = default;
  virtual std::optional<ResolvedKey> resolve_api_key(const std::string& prefix) = 0;
  virtual bool session_active(const std::string& tenant_id, const std::string& session_id) = 0;
  virtual std::optional<core::TenantInfo> find_tenant(const std::string& id_or_slug) = 0;
  // Cheap and non-blocking: recorded in memory, written out later.
  virtual void note_key_used(const std::string& tenant_id, const std::string& key_id) = 0;
  virtual std::shared_ptr<const KeyRing> keyring() = 0;
  virtual VerifyOptions verify_options() = 0;
};

// The source of a process that holds auth's data.
class LocalCredentials final : public CredentialSource {
 public:
  LocalCredentials(Service& service, core::Api& core) : service_(service), core_(core) {}
  std::optional<ResolvedKey> resolve_api_key(const std::string& prefix) override {
    return service_.resolve_api_key(prefix);
  }
  bool session_active(const std::string& tenant_id, const std::string& session_id) override {
    return service_.session_active(tenant_id, session_id);
  }
  std::optional<core::TenantInfo> find_tenant(const std::string& id_or_slug) override {
    return core_.find_tenant(id_or_slug);
  }
  void note_key_used(const std::string& tenant_id, const std::string& key_id) override {
    service_.note_key_used(tenant_id, key_id);
  }
  std::shared_ptr<const KeyRing> keyring() override { return service_.keyring(); }
  VerifyOptions verify_options() override { return service_.verify_options(); }

 private:
  Service& service_;
  core::Api& core_;
};

// Checks the route's declared access and scope for an authenticated principal acting in ctx.tenant.
// Shared by the gateway's Authenticator and the services' assertion check.
void enforce_access(const http::Context& ctx, const http::RouteDoc& route, const Principal& p);

// The JSON of GET /api/v1/auth/me for a principal.
std::string render_me(const Principal& p);

// Turns a request's credential into a Principal and admits it into its tenant, as the middleware chain's
// steps in their declared order: credential, tenant, session, suspension, CORS, plan, rate limit, access,
// metering. Known credentials and tenants are answered from per-thread caches.
class Authenticator final {
 public:
  Authenticator(CredentialSource& source, WorkerPool& workers);
  ~Authenticator();

  // The chain the server runs before every non-public handler (monolith, auth service, gateway).
  const http::Chain& chain() const { return chain_; }

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
  // As invalidate(), and tells the gateway in front of this service (constellation) to drop its caches
  // before it answers the client, so a revocation takes effect at once in every topology.
  void invalidate(http::Context& ctx) const {
    invalidate();
    if (behind_gateway_) ctx.res.header_lines += http::kInvalidateLine;
  }
  void set_behind_gateway(bool v) { behind_gateway_ = v; }
  // Counts every admitted tenant request (per tenant, and per API key). Set before serving.
  void set_usage_meter(kit::UsageMeter* meter) { meter_ = meter; }
  // Modules a tenant's plan must list for their routes (/api/v1/<module>/…) to answer (403 otherwise).
  void set_plan_gated(std::vector<std::string> modules) { plan_gated_ = std::move(modules); }

  struct CachedKey {
    unsigned char digest[32];
    std::optional<int64_t> expires_at;
    std::shared_ptr<const Principal> principal;
    std::shared_ptr<kit::Bucket> bucket;  // the key's own rate limit
    std::shared_ptr<kit::UsageCounter> usage;
    mutable std::atomic<int64_t> last_noted_ms{0};  // last_used_at is recorded at most once a minute
  };

 private:
  class CredentialStep;
  class TenantStep;
  class SessionStep;
  class SuspensionStep;
  class CorsStep;
  class PlanStep;
  class RateLimitStep;
  class AccessStep;
  class MeteringStep;

  // The cached entry of a key's prefix, or null (throws 401 for a malformed key); admit_key checks the
  // key itself against it; from_api_key does both, looking an unknown prefix up on a worker.
  std::shared_ptr<const CachedKey> known_key(std::string_view key) const;
  void admit_key(const CachedKey& cached, std::string_view key) const;
  Task<std::shared_ptr<const CachedKey>> from_api_key(std::string_view key);
  std::shared_ptr<const Principal> from_bearer(std::string_view token);
  Task<std::shared_ptr<const CachedTenant>> tenant(std::string_view id_or_slug);
  std::shared_ptr<const CachedTenant> remember_tenant(const core::TenantInfo& info) const;
  static void check_origin(const http::Context& ctx, const CachedTenant& t);
  // CORS: grants the request's Origin when it is one of the tenant's allowed_origins.
  static void allow_origin(http::Context& ctx, const CachedTenant& t);

  CredentialSource& source_;
  WorkerPool& workers_;
  LocalCache<CachedKey> keys_;
  LocalCache<Principal> tokens_{10'000};
  LocalCache<CachedTenant> tenants_;
  LocalCache<SessionState> sessions_;
  mutable kit::RateLimiter limiter_;
  bool behind_gateway_ = false;
  kit::UsageMeter* meter_ = nullptr;
  std::vector<std::string> plan_gated_;
  std::vector<std::unique_ptr<http::Step>> steps_;
  http::Chain chain_;
};

}  // namespace cdx::auth
