#include "auth/authenticator.hpp"

#include <sodium.h>

#include <charconv>

#include "auth/scope_minter.hpp"
#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/ids.hpp"

namespace cdx::auth {

namespace asio = boost::asio;
using http::Access;

namespace {

constexpr int64_t kCacheTtlMs = 5000;

Error unauthorized(std::string detail) {
  return Error(Code::kUnauthorized, std::move(detail))
      .with_header("WWW-Authenticate", "Bearer realm=\"cdx\"");
}

}  // namespace

std::string render_me(const Principal& p) {
  const std::string_view kind = p.kind == Principal::Kind::kSuperadmin ? "superadmin"
                                : p.kind == Principal::Kind::kUser     ? "user"
                                                                       : "api_key";
  nlohmann::json me = {
      {"id", p.id},
      {"type", kind},
      {"role", role_name(p.role)},
      {"tenant_id", p.tenant_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.tenant_id)},
      {"scopes", p.scopes}};
  if (p.kind == Principal::Kind::kSuperadmin) me["username"] = p.name;
  if (p.kind == Principal::Kind::kUser) me["email"] = p.name;
  if (p.kind == Principal::Kind::kApiKey) me["name"] = p.name;
  return me.dump();
}

namespace {

std::vector<std::string> split_scopes(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    const size_t sp = s.find(' ');
    if (sp != 0) out.emplace_back(s.substr(0, sp));
    if (sp == std::string_view::npos) break;
    s.remove_prefix(sp + 1);
  }
  return out;
}

}  // namespace

std::shared_ptr<const CachedTenant> Authenticator::remember_tenant(const core::TenantInfo& info) const {
  auto t = std::make_shared<CachedTenant>();
  t->id = info.tenant.id;
  t->slug = info.tenant.slug;
  t->status = info.tenant.status;
  t->plan = info.tenant.plan;
  t->modules = info.plan.modules;
  if (auto it = info.tenant.settings.find("allowed_origins");
      it != info.tenant.settings.end() && it->is_array())
    for (const auto& o : *it)
      if (o.is_string()) t->allowed_origins.push_back(o.get<std::string>());
  t->scope = ScopeMinter::mint(info.tenant.id);
  t->bucket = limiter_.bucket("tenant:" + info.tenant.id, info.plan.rate_limit_per_minute);
  if (meter_) t->usage = meter_->counter(info.tenant.id, "");
  const int64_t expires = steady_ms() + kCacheTtlMs;
  tenants_.put(t->id, t, expires);
  tenants_.put(t->slug, t, expires);
  return t;
}

Task<std::shared_ptr<const CachedTenant>> Authenticator::tenant(std::string_view id_or_slug) {
  if (auto t = tenants_.get(id_or_slug, steady_ms())) co_return t;
  if (id_or_slug.empty() || id_or_slug.size() > 64) co_return nullptr;
  std::string key(id_or_slug);
  auto info = co_await workers_.run([&] { return source_.find_tenant(key); });
  if (!info) co_return nullptr;
  co_return remember_tenant(*info);
}

std::shared_ptr<const Authenticator::CachedKey> Authenticator::known_key(std::string_view key) const {
  if (key.size() != kKeyLen ||
      (key.substr(0, kKeyTypeLen) != "cdx_sk_" && key.substr(0, kKeyTypeLen) != "cdx_pk_"))
    throw unauthorized("The API key is malformed.");
  return keys_.get(key.substr(0, kKeyPrefixLen), steady_ms());
}

// The key itself against the cached entry of its prefix: digest (constant time), expiry, last use.
void Authenticator::admit_key(const CachedKey& cached, std::string_view key) const {
  unsigned char digest[32];
  sha256(key, digest);
  if (!constant_time_equal({reinterpret_cast<const char*>(digest), sizeof digest},
                           {reinterpret_cast<const char*>(cached.digest), sizeof cached.digest}))
    throw unauthorized("The API key is not valid.");
  if (cached.expires_at && *cached.expires_at <= Clock::unix_seconds())
    throw unauthorized("The API key has expired.");
  const int64_t now_ms = steady_ms();
  int64_t noted = cached.last_noted_ms.load(std::memory_order_relaxed);
  if (now_ms - noted > 60'000 && cached.last_noted_ms.compare_exchange_strong(noted, now_ms))
    source_.note_key_used(cached.principal->tenant_id, cached.principal->id);
}

Task<std::shared_ptr<const Authenticator::CachedKey>> Authenticator::from_api_key(std::string_view key) {
  auto cached = known_key(key);
  if (!cached) {
    const std::string_view prefix = key.substr(0, kKeyPrefixLen);
    std::string p(prefix);
    auto resolved = co_await workers_.run([&] { return source_.resolve_api_key(p); });
    if (!resolved) throw unauthorized("The API key is not valid.");
    auto entry = std::make_shared<CachedKey>();
    // Keep the stored digest as raw bytes for a cheap constant-time compare on every request.
    size_t len = 0;
    if (sodium_hex2bin(entry->digest, sizeof entry->digest, resolved->key.key_hash.data(),
                       resolved->key.key_hash.size(), nullptr, &len, nullptr) != 0 ||
        len != sizeof entry->digest)
      throw Error(Code::kInternal, "stored API key hash is malformed");
    entry->expires_at = resolved->key.expires_at;
    auto principal = std::make_shared<Principal>();
    principal->kind = Principal::Kind::kApiKey;
    principal->id = resolved->key.id;
    principal->name = resolved->key.name;
    principal->role = resolved->key.type == "secret" ? Role::kAdmin : Role::kClient;
    principal->publishable = resolved->key.type == "publishable";
    principal->tenant_id = resolved->key.tenant_id;
    principal->scopes = resolved->key.scopes;
    principal->scope = ScopeMinter::mint(resolved->key.tenant_id);
    principal->me_json = render_me(*principal);
    entry->principal = std::move(principal);
    entry->bucket = limiter_.bucket("key:" + resolved->key.id, resolved->tenant.plan.rate_limit_per_minute);
    if (meter_) entry->usage = meter_->counter(resolved->key.tenant_id, resolved->key.id);
    remember_tenant(resolved->tenant);
    keys_.put(std::string(prefix), entry, steady_ms() + kCacheTtlMs);
    cached = std::move(entry);
  }
  admit_key(*cached, key);
  co_return cached;  // owned: the cache entry may go while the request awaits
}

std::shared_ptr<const Principal> Authenticator::from_bearer(std::string_view token) {
  const int64_t now_ms = steady_ms();
  if (auto p = tokens_.get(token, now_ms)) {
    if (p->expires_at > Clock::unix_seconds()) return p;
  }
  auto ring = source_.keyring();
  TokenClaims c;
  try {
    c = ring->verify(token, source_.verify_options());
  } catch (const Error& e) {
    throw unauthorized(std::string("The access token is not valid: ") + e.detail() + ".");
  }
  auto p = std::make_shared<Principal>();
  p->id = c.sub;
  p->expires_at = c.exp;
  if (c.extra.is_object() && c.extra.contains("sid") && c.extra["sid"].is_string())
    p->session_id = c.extra["sid"].get<std::string>();
  // A token an OAuth client obtained is limited to the scopes granted to that client.
  p->scope_limited = c.extra.is_object() && c.extra.contains("client_id");
  p->scopes = split_scopes(c.scope);
  if (c.role == "SUPERADMIN") {
    p->kind = Principal::Kind::kSuperadmin;
    p->role = Role::kSuperadmin;
    if (c.extra.is_object() && c.extra.contains("username") && c.extra["username"].is_string())
      p->name = c.extra["username"].get<std::string>();
  } else {
    if (c.tid.empty() || (c.role != "ADMIN" && c.role != "CLIENT"))
      throw unauthorized("The token has no tenant or role.");
    p->kind = Principal::Kind::kUser;
    p->role = c.role == "ADMIN" ? Role::kAdmin : Role::kClient;
    p->tenant_id = c.tid;
    p->scope = ScopeMinter::mint(c.tid);
    if (c.extra.is_object() && c.extra.contains("email") && c.extra["email"].is_string())
      p->name = c.extra["email"].get<std::string>();
  }
  p->me_json = render_me(*p);
  const int64_t ttl_ms = std::min<int64_t>((c.exp - Clock::unix_seconds()) * 1000, 3600 * 1000);
  tokens_.put(std::string(token), p, now_ms + std::max<int64_t>(ttl_ms, 0));
  return p;
}

void enforce_access(const http::Context& ctx, const http::RouteDoc& route, const Principal& p) {
  const Access access = route.access;
  switch (access) {
    case Access::kPublic:
    case Access::kAuthenticated:
      break;
    case Access::kSuperadmin:
      if (p.kind != Principal::Kind::kSuperadmin)
        throw Error(Code::kForbidden, "This endpoint is for the SUPERADMIN.");
      break;
    case Access::kTenantMember:
    case Access::kTenantAdmin:
    case Access::kTenantAdminOrSelf:
      if (!ctx.tenant)
        throw Error(Code::kInvalidRequest,
                    "A SUPERADMIN acting inside a tenant must name it in X-Tenant-ID.");
      if (access == Access::kTenantAdmin && p.role == Role::kClient)
        throw Error(Code::kForbidden, "This endpoint needs the ADMIN role.");
      if (access == Access::kTenantAdminOrSelf && p.role == Role::kClient &&
          !(p.kind == Principal::Kind::kUser && ctx.req.param(0) == p.id))
        throw Error(Code::kForbidden, "A CLIENT may only act on its own user.");
      break;
    case Access::kService:
      throw Error(Code::kForbidden, "This endpoint is internal to the platform's services.");
  }
  if (!route.scope.empty() && (p.kind == Principal::Kind::kApiKey || p.scope_limited) &&
      !p.has_scope(route.scope))
    throw Error(Code::kForbidden, "The credential lacks the scope '" + route.scope + "'.");
}

// ---- the steps ---------------------------------------------------------------------------------------------

// X-API-Key or Bearer → ctx.principal; the key's limits for the rate-limit and metering steps.
class Authenticator::CredentialStep final : public http::Step {
 public:
  explicit CredentialStep(Authenticator& a) : a_(a) {}
  std::string_view name() const override { return "credential"; }
  // A bearer token is verified here; an API key whose prefix is cached too. Waits only for an unknown key.
  bool check(http::Context& ctx, const http::Route&) const override {
    if (const std::string_view api_key = ctx.req.header("x-api-key"); !api_key.empty()) {
      auto key = a_.known_key(api_key);
      if (!key) return false;
      a_.admit_key(*key, api_key);
      ctx.principal = key->principal;
      http::set_slot<CachedKey>(ctx, http::StepSlot::kCredential, std::move(key));
      return true;
    }
    const std::string_view authorization = ctx.req.header("authorization");
    if (authorization.empty())
      throw unauthorized("This endpoint needs a credential: Authorization: Bearer <token> or X-API-Key.");
    constexpr std::string_view kBearer = "Bearer ";
    if (authorization.size() <= kBearer.size() ||
        !boost::beast::iequals(authorization.substr(0, kBearer.size()), kBearer))
      throw unauthorized("The Authorization header must be 'Bearer <token>'.");
    ctx.principal = a_.from_bearer(authorization.substr(kBearer.size()));
    return true;
  }
  Task<void> run(http::Context& ctx, const http::Route& route, http::Next next) const override {
    auto key = co_await a_.from_api_key(ctx.req.header("x-api-key"));
    ctx.principal = key->principal;
    http::set_slot<CachedKey>(ctx, http::StepSlot::kCredential, std::move(key));
    if (auto rest = next.start(ctx)) co_await std::move(*rest);
  }

 private:
  Authenticator& a_;
};

// The tenant the request acts in: a tenant-bound credential's own (X-Tenant-ID may only repeat it); the
// one a SUPERADMIN names. A publishable key must come from one of the tenant's origins.
class Authenticator::TenantStep final : public http::Step {
 public:
  explicit TenantStep(Authenticator& a) : a_(a) {}
  std::string_view name() const override { return "tenant"; }
  // A cached tenant is admitted here; an unknown one is looked up on a worker.
  bool check(http::Context& ctx, const http::Route&) const override {
    const std::string_view id = wanted(ctx);
    if (id.empty()) return true;  // the operator acting outside any tenant
    auto t = a_.tenants_.get(id, steady_ms());
    if (!t) return false;
    admit(ctx, std::move(t));
    return true;
  }
  Task<void> run(http::Context& ctx, const http::Route& route, http::Next next) const override {
    admit(ctx, co_await a_.tenant(wanted(ctx)));
    if (auto rest = next.start(ctx)) co_await std::move(*rest);
  }

 private:
  // A tenant-bound credential acts in its own tenant; a SUPERADMIN in the one X-Tenant-ID names, if any.
  static std::string_view wanted(const http::Context& ctx) {
    const Principal& p = *ctx.principal;
    return p.kind == Principal::Kind::kSuperadmin ? ctx.req.header("x-tenant-id") : std::string_view(p.tenant_id);
  }
  // X-Tenant-ID may only repeat a credential's own tenant; a publishable key must come from one of the
  // tenant's origins.
  static void admit(http::Context& ctx, std::shared_ptr<const CachedTenant> t) {
    const Principal& p = *ctx.principal;
    if (p.kind == Principal::Kind::kSuperadmin) {
      if (!t) throw Error(Code::kNotFound, "No tenant has the id or slug given in X-Tenant-ID.");
      ctx.tenant_storage = t->scope;
      ctx.tenant = &*ctx.tenant_storage;
    } else {
      if (!t) throw unauthorized("The credential's tenant no longer exists.");
      const std::string_view named = ctx.req.header("x-tenant-id");
      if (!named.empty() && named != t->id && named != t->slug)
        throw Error(Code::kForbidden, "The credential belongs to another tenant than X-Tenant-ID names.");
      ctx.tenant = &*p.scope;
      if (p.publishable) check_origin(ctx, *t);
    }
    http::set_slot<CachedTenant>(ctx, http::StepSlot::kTenant, std::move(t));
  }

  Authenticator& a_;
};

// A token of an ended session (logout, refresh reuse, the user disabled, deleted, or its password or role
// changed) stops working within the cache TTL, at once in this process.
class Authenticator::SessionStep final : public http::Step {
 public:
  explicit SessionStep(Authenticator& a) : a_(a) {}
  std::string_view name() const override { return "session"; }
  // Only a token of a session (its sid) is checked, from the cache when it can.
  bool check(http::Context& ctx, const http::Route&) const override {
    const Principal& p = *ctx.principal;
    if (p.session_id.empty()) return true;
    auto state = a_.sessions_.get(p.session_id, steady_ms());
    if (!state) return false;
    if (!state->active) throw unauthorized("The session has ended; log in again.");
    return true;
  }
  Task<void> run(http::Context& ctx, const http::Route& route, http::Next next) const override {
    const Principal& p = *ctx.principal;
    std::string tenant_id = p.tenant_id, sid = p.session_id;
    const bool active = co_await a_.workers_.run([&] { return a_.source_.session_active(tenant_id, sid); });
    a_.sessions_.put(sid, std::make_shared<const SessionState>(SessionState{active}), steady_ms() + kCacheTtlMs);
    if (!active) throw unauthorized("The session has ended; log in again.");
    if (auto rest = next.start(ctx)) co_await std::move(*rest);
  }

 private:
  Authenticator& a_;
};

class Authenticator::SuspensionStep final : public http::Step {
 public:
  std::string_view name() const override { return "suspension"; }
  bool check(http::Context& ctx, const http::Route&) const override {
    const CachedTenant* t = http::slot_ptr<CachedTenant>(ctx, http::StepSlot::kTenant);
    if (t && t->status == "suspended")
      throw Error(Code::kTenantSuspended, "The tenant '" + t->slug + "' is suspended.");
    return true;
  }
};

class Authenticator::CorsStep final : public http::Step {
 public:
  std::string_view name() const override { return "cors"; }
  bool check(http::Context& ctx, const http::Route&) const override {
    if (const CachedTenant* t = http::slot_ptr<CachedTenant>(ctx, http::StepSlot::kTenant)) allow_origin(ctx, *t);
    return true;
  }
};

// A module's routes answer only tenants whose plan lists the module (the operator acts everywhere).
class Authenticator::PlanStep final : public http::Step {
 public:
  explicit PlanStep(const Authenticator& a) : a_(a) {}
  std::string_view name() const override { return "plan"; }
  bool check(http::Context& ctx, const http::Route& route) const override {
    const CachedTenant* t = http::slot_ptr<CachedTenant>(ctx, http::StepSlot::kTenant);
    if (!t || ctx.principal->kind == Principal::Kind::kSuperadmin) return true;
    constexpr std::string_view kApi = "/api/v1/";
    std::string_view path = route.pattern;
    if (path.substr(0, kApi.size()) != kApi) return true;
    path.remove_prefix(kApi.size());
    const std::string_view module = path.substr(0, path.find('/'));
    for (const auto& gated : a_.plan_gated_) {
      if (gated != module) continue;
      if (std::find(t->modules.begin(), t->modules.end(), module) == t->modules.end())
        throw Error(Code::kForbidden, "The tenant's plan '" + t->plan + "' does not include the " + std::string(module) +
                                          " module.");
      return true;
    }
    return true;
  }

 private:
  const Authenticator& a_;
};

// Token buckets per tenant and per key (the operator is not limited); RateLimit-* on every limited answer.
class Authenticator::RateLimitStep final : public http::Step {
 public:
  std::string_view name() const override { return "rate limit"; }
  bool check(http::Context& ctx, const http::Route&) const override {
    const CachedTenant* t = http::slot_ptr<CachedTenant>(ctx, http::StepSlot::kTenant);
    if (!t || ctx.principal->kind == Principal::Kind::kSuperadmin) return true;
    const CachedKey* key = http::slot_ptr<CachedKey>(ctx, http::StepSlot::kCredential);
    const int64_t now = kit::now_us();
    kit::Decision d = t->bucket->take(now);
    if (key && d.allowed) {
      kit::Decision k = key->bucket->take(now);
      if (!k.allowed || k.remaining < d.remaining) d = k;
    }
    // draft-ietf-httpapi-ratelimit-headers, written without allocating.
    std::string& h = ctx.res.header_lines;
    char num[24];
    auto line = [&](std::string_view name, int64_t v) {
      h += name;
      h += ": ";
      h.append(num, std::to_chars(num, num + sizeof num, v).ptr);
      h += "\r\n";
    };
    line("RateLimit-Limit", d.limit);
    line("RateLimit-Remaining", d.remaining);
    line("RateLimit-Reset", d.reset_s);
    if (!d.allowed)
      throw Error(Code::kRateLimited, "The rate limit of the tenant's plan is exhausted; retry later.")
          .with_header("Retry-After", std::to_string(d.retry_after_s));
    return true;
  }
};

class Authenticator::AccessStep final : public http::Step {
 public:
  std::string_view name() const override { return "access"; }
  bool check(http::Context& ctx, const http::Route& route) const override {
    enforce_access(ctx, route.doc, *ctx.principal);
    return true;
  }
};

// Counts the admitted request: per API key, or per tenant for other credentials.
class Authenticator::MeteringStep final : public http::Step {
 public:
  std::string_view name() const override { return "metering"; }
  bool check(http::Context& ctx, const http::Route&) const override {
    if (const CachedKey* key = http::slot_ptr<CachedKey>(ctx, http::StepSlot::kCredential)) {
      if (key->usage) key->usage->add();
    } else if (const CachedTenant* t = http::slot_ptr<CachedTenant>(ctx, http::StepSlot::kTenant)) {
      if (t->usage) t->usage->add();
    }
    return true;
  }
};

Authenticator::Authenticator(CredentialSource& source, WorkerPool& workers) : source_(source), workers_(workers) {
  steps_.push_back(std::make_unique<CredentialStep>(*this));
  steps_.push_back(std::make_unique<TenantStep>(*this));
  steps_.push_back(std::make_unique<SessionStep>(*this));
  steps_.push_back(std::make_unique<SuspensionStep>());
  steps_.push_back(std::make_unique<CorsStep>());
  steps_.push_back(std::make_unique<PlanStep>(*this));
  steps_.push_back(std::make_unique<RateLimitStep>());
  steps_.push_back(std::make_unique<AccessStep>());
  steps_.push_back(std::make_unique<MeteringStep>());
  for (const auto& s : steps_) chain_.add(*s);
}

Authenticator::~Authenticator() = default;

Task<std::string> Authenticator::tenant_of_publishable_key(http::Context& ctx) {
  const std::string_view key = ctx.req.header("x-api-key");
  if (key.substr(0, kKeyTypeLen) != "cdx_pk_")
    throw unauthorized("Only a publishable key (cdx_pk_…) names a tenant here.");
  auto k = co_await from_api_key(key);
  auto t = co_await tenant(k->principal->tenant_id);
  if (!t) throw unauthorized("The credential's tenant no longer exists.");
  check_origin(ctx, *t);
  allow_origin(ctx, *t);
  co_return k->principal->tenant_id;
}

void Authenticator::check_origin(const http::Context& ctx, const CachedTenant& t) {
  const std::string_view origin = ctx.req.header("origin");
  if (!origin.empty() &&
      std::find(t.allowed_origins.begin(), t.allowed_origins.end(), origin) == t.allowed_origins.end())
    throw Error(Code::kForbidden,
                "This publishable key may not be used from that Origin (tenant allowed_origins).");
}

void Authenticator::allow_origin(http::Context& ctx, const CachedTenant& t) {
  const std::string_view origin = ctx.req.header("origin");
  if (origin.empty() ||
      std::find(t.allowed_origins.begin(), t.allowed_origins.end(), origin) == t.allowed_origins.end())
    return;  // no CORS grant: a browser will not hand the answer to that page
  std::string& h = ctx.res.header_lines;
  h += "Access-Control-Allow-Origin: ";
  h += origin;
  h += "\r\nVary: Origin\r\nAccess-Control-Expose-Headers: X-Request-ID, RateLimit-Limit, "
       "RateLimit-Remaining, "
       "RateLimit-Reset, Retry-After\r\n";
}

}  // namespace cdx::auth
