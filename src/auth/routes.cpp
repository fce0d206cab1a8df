// Auth's HTTP handlers: parse, call the service on a worker, render. Access is declared per route.
#include <utility>
#include "common/task.hpp"

#include "auth/module.hpp"
#include "auth/scope_minter.hpp"
#include "common/clock.hpp"
#include "common/json_body.hpp"
#include "http/pagination.hpp"
#include "http/router.hpp"

namespace cdx::auth {

using http::Access;
using http::Context;
using http::Method;
namespace asio = boost::asio;

void AuthModule::mount(http::Router& r) {
  r.add(
      Method::kPost, "/api/v1/auth/superadmin/login",
      [this](Context& ctx) -> Task<void> {
        JsonBody in(ctx.req.body);
        const std::string username = in.required_string("username", 1, 200);
        const std::string password = in.required_string("password", 1, 256);
        in.finish();
        auto out = co_await workers_.run([&] { return service_.superadmin_login(username, password); });
        ctx.res.json(200, out.dump());
        ctx.res.header("Cache-Control", "no-store");
      },
      {.summary = "Log the SUPERADMIN in", .tag = "auth", .request_schema = "SuperadminLogin",
       .response_schema = "TokenAnswer"});

  r.add(
      Method::kPost, "/api/v1/auth/login",
      [this](Context& ctx) -> Task<void> {
        JsonBody in(ctx.req.body);
        const std::string email = in.required_string("email", 1, 254);
        const std::string password = in.required_string("password", 1, 256);
        std::string tenant = in.optional_string("tenant", 1, 64).value_or(std::string(ctx.req.header("x-tenant-id")));
        if (tenant.empty()) in.fail("tenant", "is required: in the body, as X-Tenant-ID, or through a publishable key");
        in.finish();
        auto out = co_await workers_.run([&] { return service_.login(tenant, email, password); });
        ctx.res.json(200, out.dump());
        ctx.res.header("Cache-Control", "no-store");
      },
      {.summary = "Log a tenant user in", .tag = "auth", .request_schema = "Login", .response_schema = "TokenAnswer"});

  r.add_sync(
      Method::kGet, "/api/v1/auth/me",
      [](Context& ctx) { ctx.res.set(200, "application/json", ctx.principal->me_json); },
      {.access = Access::kAuthenticated, .summary = "The caller's identity", .tag = "auth",
       .response_schema = "Me"});

  r.add_sync(
      Method::kGet, "/.well-known/jwks.json",
      [this](Context& ctx) {
        ctx.res.set(200, "application/json", service_.keyring()->jwks_json());
        ctx.res.header("Cache-Control", "public, max-age=300");
      },
      {.summary = "Public keys that sign access tokens (JWKS)", .tag = "auth"});

  r.add(
      Method::kPost, "/api/v1/auth/api-keys",
      [this](Context& ctx) -> Task<void> {
        JsonBody in(ctx.req.body);
        NewApiKey k;
        k.name = in.required_string("name", 1, 200);
        k.type = in.optional_string("type", 1, 20).value_or("secret");
        k.scopes = in.optional_string_array("scopes");
        if (auto exp = in.optional_string("expires_at", 1, 64)) {
          if (auto t = parse_rfc3339(*exp))
            k.expires_at = std::chrono::duration_cast<std::chrono::seconds>(t->time_since_epoch()).count();
          else
            in.fail("expires_at", "must be an RFC 3339 date-time, e.g. 2027-01-31T00:00:00Z");
        }
        in.finish();
        if (ctx.principal->kind == Principal::Kind::kUser) k.created_by = ctx.principal->id;
        // A key can only hand out what it holds itself.
        if (ctx.principal->kind == Principal::Kind::kApiKey) k.caller_scopes = ctx.principal->scopes;
        const db::TenantScope& scope = *ctx.tenant;
        auto out = co_await workers_.run([&] { return service_.create_api_key(scope, k); });
        ctx.res.json(201, out.dump());
        ctx.res.header("Cache-Control", "no-store");
      },
      {.access = Access::kTenantAdmin, .scope = "auth:write",
       .summary = "Create an API key; the full key is in this answer only",
       .tag = "api-keys", .request_schema = "ApiKeyCreate", .response_schema = "ApiKeyCreated",
       .success_status = 201});

  r.add(
      Method::kGet, "/api/v1/auth/api-keys",
      [this](Context& ctx) -> Task<void> {
        const http::Page page = http::parse_page(ctx.req);
        const db::TenantScope& scope = *ctx.tenant;
        auto keys = co_await workers_.run([&] { return store_.list_api_keys(scope, page.limit, page.after); });
        nlohmann::json items = nlohmann::json::array();
        for (const auto& k : keys) items.push_back(to_json(k));
        ctx.res.json(200, http::render_page(std::move(items), page));
      },
      {.access = Access::kTenantAdmin, .scope = "auth:read", .summary = "List the tenant's API keys (prefix only)",
       .tag = "api-keys",
       .response_schema = "ApiKey", .list = true});

  r.add(
      Method::kDelete, "/api/v1/auth/api-keys/{id}",
      [this](Context& ctx) -> Task<void> {
        const db::TenantScope& scope = *ctx.tenant;
        std::string id(ctx.req.param(0));
        const bool revoked = co_await workers_.run([&] { return store_.revoke_api_key(scope, id); });
        if (!revoked) throw Error(Code::kNotFound, "No API key has the id '" + id + "'.");
        authenticator_.invalidate();
        ctx.res.no_content();
      },
      {.access = Access::kTenantAdmin, .scope = "auth:write", .summary = "Revoke an API key (effective at once)",
       .tag = "api-keys",
       .success_status = 204});
}

}  // namespace cdx::auth
