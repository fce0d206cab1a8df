#include "auth/assertion_authenticator.hpp"

#include "auth/authenticator.hpp"
#include "auth/scope_minter.hpp"
#include "common/clock.hpp"
#include "common/error.hpp"

namespace cdx::auth {

using http::Access;

std::shared_ptr<const AssertionAuthenticator::Verified> AssertionAuthenticator::verify(
    std::string_view token) const {
  const int64_t now_ms = steady_ms();
  if (auto v = verified_.get(token, now_ms)) return v;
  const int64_t now = Clock::unix_seconds();
  auto a = key_.verify(token, now);
  if (!a) return nullptr;
  auto v = std::make_shared<Verified>();
  v->kind = a->kind;
  if (!a->tenant_id.empty()) v->tenant = ScopeMinter::mint(a->tenant_id);
  if (a->kind == http::Assertion::Kind::kPrincipal) {
    auto p = std::make_shared<Principal>(std::move(a->principal));
    if (!p->tenant_id.empty()) p->scope = ScopeMinter::mint(p->tenant_id);
    p->me_json = render_me(*p);
    v->principal = std::move(p);
  }
  verified_.put(std::string(token), v, now_ms + (a->expires_at - now) * 1000);
  return v;
}

bool AssertionAuthenticator::check(http::Context& ctx, const http::Route& r) const {
  const http::RouteDoc& route = r.doc;
  if (route.access == Access::kPublic && route.tag == "operations") return true;  // probes and scrapers
  // The binding (this request's method and target) first, then the assertion, whose check is cached.
  auto v = verify(
      key_.unbind(ctx.req.header("x-cdx-assertion"), http::method_name(ctx.req.method), ctx.req.target));
  if (!v)
    throw Error(Code::kUnauthorized,
                "This service answers only requests forwarded by the gateway with a valid signed assertion.");
  if (route.access == Access::kService) {
    if (v->kind != http::Assertion::Kind::kService)
      throw Error(Code::kForbidden, "This endpoint is internal to the platform's services.");
    return true;
  }
  if (route.access == Access::kPublic) return true;
  if (v->kind != http::Assertion::Kind::kPrincipal)
    throw Error(Code::kUnauthorized,
                "This endpoint needs a credential: Authorization: Bearer <token> or X-API-Key.");
  ctx.principal = v->principal;
  const Principal& p = *ctx.principal;
  if (p.scope && v->tenant && v->tenant->tenant_id() == p.scope->tenant_id()) {
    ctx.tenant = &*p.scope;
  } else if (v->tenant) {
    ctx.tenant_storage = *v->tenant;
    ctx.tenant = &*ctx.tenant_storage;
  }
  enforce_access(ctx, route, p);
  return true;
}

}  // namespace cdx::auth
