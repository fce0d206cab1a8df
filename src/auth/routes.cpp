// Auth's HTTP handlers: parse, call the service on a worker, render. Access and scopes are declared
// per route; the Authenticator enforces them before a handler runs.
#include "auth/module.hpp"
#include "common/clock.hpp"
#include "common/json_body.hpp"
#include "common/log.hpp"
#include "http/pagination.hpp"
#include "http/router.hpp"

namespace cdx::auth {

using http::Access;
using http::Context;
using http::Method;

namespace {

Caller caller_of(const Context& ctx) { return Caller{std::string(ctx.req.remote), ctx.principal.get()}; }

void no_store(Context& ctx) { ctx.res.header("Cache-Control", "no-store"); }

void request_password_reset_later(WorkerPool& workers, Service& service, std::string tenant, std::string email,
                                  Caller caller) {
  workers.post([&service, tenant = std::move(tenant), email = std::move(email), caller = std::move(caller)] {
    try {
      service.forgot_password(tenant, email, caller);
    } catch (const std::exception& e) {
      log::error("password reset request failed", {{"error", e.what()}});
    }
  });
}

}  // namespace

void AuthModule::mount(http::Router& r) {
  mount_sessions(r);
  mount_users(r);
  mount_api_keys(r);
  mount_oauth(r);

  r.add_sync(
      Method::kGet, "/.well-known/jwks.json",
      [this](Context& ctx) {
        ctx.res.set(200, "application/json", service_.keyring()->jwks_json());
        ctx.res.header("Cache-Control", "public, max-age=300");
      },
      {.summary = "Public keys that sign access tokens (JWKS)", .tag = "auth"});

  r.add(
      Method::kGet, "/api/v1/auth/audit",
      [this](Context& ctx) -> Task<void> {
        const http::Page page = http::parse_page(ctx.req);
        AuditFilter f;
        f.limit = page.limit;
        f.after_id = page.after;
        f.action = ctx.req.query_param("action");
        f.actor_id = ctx.req.query_param("actor_id");
        const db::TenantScope& scope = *ctx.tenant;
        auto rows = co_await workers_.run([&] { return service_.list_audit(scope, f); });
        ctx.res.json(200, http::render_page(std::move(rows), page));
      },
      {.access = Access::kTenantAdmin, .scope = "auth:read",
       .summary = "The tenant's audit log of security-relevant actions, newest first", .tag = "audit",
       .response_schema = "AuditEntry", .list = true, .query_params = {"action", "actor_id"}});
}

void AuthModule::mount_sessions(http::Router& r) {
  r.add(
      Method::kPost, "/api/v1/auth/superadmin/login",
      [this](Context& ctx) -> Task<void> {
        JsonBody in(ctx.req.body);
        const std::string username = in.required_string("username", 1, 200);
        const std::string password = in.required_string("password", 1, 256);
        in.finish();
        const Caller caller = caller_of(ctx);
        auto out = co_await workers_.run([&] { return service_.superadmin_login(username, password, caller); });
        ctx.res.json(200, out.dump());
        no_store(ctx);
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
        const std::string_view key = ctx.req.header("x-api-key");
        if (tenant.empty() && key.empty())
          in.fail("tenant", "is required: in the body, as X-Tenant-ID, or through a publishable key");
        in.finish();
        if (tenant.empty()) tenant = co_await authenticator_.tenant_of_publishable_key(ctx);
        const Caller caller = caller_of(ctx);
        auto attempt = co_await workers_.run([&] { return service_.begin_login(tenant, email, caller); });
        const bool ok = co_await service_.hashers().run([&] { return Service::check_password(attempt, password); });
        auto out = co_await workers_.run([&] { return service_.finish_login(attempt, ok, caller); });
        ctx.res.json(200, out.dump());
        no_store(ctx);
      },
      {.summary = "Log a tenant user in", .tag = "auth", .request_schema = "Login", .response_schema = "TokenAnswer"});

  r.add(
      Method::kPost, "/api/v1/auth/refresh",
      [this](Context& ctx) -> Task<void> {
        JsonBody in(ctx.req.body);
        const std::string token = in.required_string("refresh_token", 1, 200);
        in.finish();
        const Caller caller = caller_of(ctx);
        auto out = co_await workers_.run([&] { return service_.refresh(token, caller); });
        ctx.res.json(200, out.dump());
        no_store(ctx);
      },
      {.summary = "Exchange a refresh token for a new pair; the old one is spent (reuse revokes the session)",
       .tag = "auth", .request_schema = "Refresh", .response_schema = "TokenAnswer"});

  r.add(
      Method::kPost, "/api/v1/auth/logout",
      [this](Context& ctx) -> Task<void> {
        std::optional<std::string> token;
        if (!ctx.req.body.empty()) {
          JsonBody in(ctx.req.body);
          token = in.optional_string("refresh_token", 1, 200);
          in.finish();
        }
        const Caller caller = caller_of(ctx);
        const Principal& who = *ctx.principal;
        co_await workers_.run([&] { service_.logout(who, token, caller); });
        authenticator_.invalidate(ctx);  // the session's access tokens stop working at once
        ctx.res.no_content();
      },
      {.access = Access::kAuthenticated, .summary = "End the session: revokes its refresh token family",
       .tag = "auth", .request_schema = "Logout", .request_optional = true, .success_status = 204});

  r.add(
      Method::kPost, "/api/v1/auth/register",
      [this](Context& ctx) -> Task<void> {
        JsonBody in(ctx.req.body);
        NewUser u;
        u.email = in.required_string("email", 3, 254);
        u.password = in.required_string("password", 1, 256);
        u.name = in.optional_string("name", 1, 200).value_or("");
        std::string tenant = in.optional_string("tenant", 1, 64).value_or(std::string(ctx.req.header("x-tenant-id")));
        const std::string_view key = ctx.req.header("x-api-key");
        if (tenant.empty() && key.empty())
          in.fail("tenant", "is required: in the body, as X-Tenant-ID, or through a publishable key");
        in.finish();
        if (tenant.empty()) tenant = co_await authenticator_.tenant_of_publishable_key(ctx);
        const Caller caller = caller_of(ctx);
        auto out = co_await workers_.run([&] { return service_.register_user(tenant, u, caller); });
        ctx.res.json(201, out.dump());
        no_store(ctx);
      },
      {.summary = "Self sign-up as a CLIENT, where the tenant's settings.allow_registration is true", .tag = "auth",
       .request_schema = "Register", .response_schema = "TokenAnswer", .success_status = 201});

  r.add(
      Method::kPost, "/api/v1/auth/password/forgot",
      [this](Context& ctx) -> Task<void> {
        JsonBody in(ctx.req.body);
        const std::string email = in.required_string("email", 1, 254);
        std::string tenant = in.optional_string("tenant", 1, 64).value_or(std::string(ctx.req.header("x-tenant-id")));
        if (tenant.empty()) in.fail("tenant", "is required: in the body or as X-Tenant-ID");
        in.finish();
        // The work happens after the answer, so a known and an unknown account answer alike, in time too.
        request_password_reset_later(workers_, service_, tenant, email, caller_of(ctx));
        ctx.res.json(202, R"({"status":"accepted","detail":"If the account exists, a reset link is on its way."})");
        co_return;  // without a co_await or co_return this would not be a coroutine
      },
      {.summary = "Mail a single-use password reset link (same answer whether or not the account exists)",
       .tag = "auth", .request_schema = "PasswordForgot", .success_status = 202});

  r.add(
      Method::kPost, "/api/v1/auth/password/reset",
      [this](Context& ctx) -> Task<void> {
        JsonBody in(ctx.req.body);
        const std::string token = in.required_string("token", 1, 200);
        const std::string password = in.required_string("password", 1, 256);
        in.finish();
        const Caller caller = caller_of(ctx);
        co_await workers_.run([&] { service_.reset_password(token, password, caller); });
        authenticator_.invalidate(ctx);
        ctx.res.no_content();
      },
      {.summary = "Set a new password with a reset token; ends every session of the user", .tag = "auth",
       .request_schema = "PasswordReset", .success_status = 204});

  r.add_sync(
      Method::kGet, "/api/v1/auth/me",
      [](Context& ctx) { ctx.res.set(200, "application/json", ctx.principal->me_json); },
      {.access = Access::kAuthenticated, .summary = "The caller's identity", .tag = "auth",
       .response_schema = "Me"});
}

void AuthModule::mount_users(http::Router& r) {
  r.add(
      Method::kGet, "/api/v1/auth/users",
      [this](Context& ctx) -> Task<void> {
        const http::Page page = http::parse_page(ctx.req);
        UserFilter f;
        f.limit = page.limit;
        f.after_id = page.after;
        f.q = ctx.req.query_param("q");
        if (f.q && f.q->empty()) f.q.reset();
        f.role = ctx.req.query_param("role");
        f.status = ctx.req.query_param("status");
        const db::TenantScope& scope = *ctx.tenant;
        auto users = co_await workers_.run([&] { return service_.list_users(scope, f); });
        nlohmann::json items = nlohmann::json::array();
        for (const auto& u : users) items.push_back(to_json(u));
        ctx.res.json(200, http::render_page(std::move(items), page));
      },
      {.access = Access::kTenantAdmin, .scope = "auth:read", .summary = "List the tenant's users, newest first",
       .tag = "users", .response_schema = "User", .list = true, .query_params = {"q", "role", "status"}});

  r.add(
      Method::kPost, "/api/v1/auth/users",
      [this](Context& ctx) -> Task<void> {
        JsonBody in(ctx.req.body);
        NewUser u;
        u.email = in.required_string("email", 3, 254);
        u.name = in.optional_string("name", 1, 200).value_or("");
        u.role = in.optional_string("role", 1, 20).value_or("CLIENT");
        u.password = in.optional_string("password", 1, 256);
        in.finish();
        const db::TenantScope& scope = *ctx.tenant;
        const Caller caller = caller_of(ctx);
        auto out = co_await workers_.run([&] { return service_.add_user(scope, u, caller); });
        ctx.res.json(201, out.dump());
      },
      {.access = Access::kTenantAdmin, .scope = "auth:write",
       .summary = "Create a user (ADMIN or CLIENT); a generated password is answered once", .tag = "users",
       .request_schema = "UserCreate", .response_schema = "User", .success_status = 201});

  r.add(
      Method::kGet, "/api/v1/auth/users/{id}",
      [this](Context& ctx) -> Task<void> {
        const db::TenantScope& scope = *ctx.tenant;
        auto u = co_await workers_.run([&] { return service_.get_user(scope, ctx.req.param(0)); });
        ctx.res.json(200, to_json(u).dump());
      },
      {.access = Access::kTenantAdminOrSelf, .scope = "auth:read", .summary = "Get a user (a CLIENT: only itself)",
       .tag = "users", .response_schema = "User"});

  r.add(
      Method::kPatch, "/api/v1/auth/users/{id}",
      [this](Context& ctx) -> Task<void> {
        JsonBody in(ctx.req.body);
        UserChanges c;
        c.name = in.optional_string("name", 1, 200);
        c.role = in.optional_string("role", 1, 20);
        c.status = in.optional_string("status", 1, 20);
        c.password = in.optional_string("password", 1, 256);
        if (in.has("email")) in.fail("email", "cannot be changed");
        in.finish();
        const db::TenantScope& scope = *ctx.tenant;
        const Caller caller = caller_of(ctx);
        const std::string id(ctx.req.param(0));
        auto u = co_await workers_.run([&] { return service_.update_user(scope, id, c, caller); });
        authenticator_.invalidate(ctx);
        ctx.res.json(200, to_json(u).dump());
      },
      {.access = Access::kTenantAdminOrSelf, .scope = "auth:write",
       .summary = "Update a user; role and status only by an ADMIN. A new password, role or status ends its sessions",
       .tag = "users", .request_schema = "UserUpdate", .response_schema = "User"});

  r.add(
      Method::kDelete, "/api/v1/auth/users/{id}",
      [this](Context& ctx) -> Task<void> {
        const db::TenantScope& scope = *ctx.tenant;
        const Caller caller = caller_of(ctx);
        const std::string id(ctx.req.param(0));
        co_await workers_.run([&] { service_.delete_user(scope, id, caller); });
        authenticator_.invalidate(ctx);
        ctx.res.no_content();
      },
      {.access = Access::kTenantAdmin, .scope = "auth:write", .summary = "Delete a user and end its sessions",
       .tag = "users", .success_status = 204});
}

void AuthModule::mount_api_keys(http::Router& r) {
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
        const Caller caller = caller_of(ctx);
        auto out = co_await workers_.run([&] { return service_.create_api_key(scope, k, &caller); });
        ctx.res.json(201, out.dump());
        no_store(ctx);
      },
      {.access = Access::kTenantAdmin, .scope = "auth:write",
       .summary = "Create an API key; the full key is in this answer only", .tag = "api-keys",
       .request_schema = "ApiKeyCreate", .response_schema = "ApiKeyCreated", .success_status = 201});

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
       .tag = "api-keys", .response_schema = "ApiKey", .list = true});

  r.add(
      Method::kDelete, "/api/v1/auth/api-keys/{id}",
      [this](Context& ctx) -> Task<void> {
        const db::TenantScope& scope = *ctx.tenant;
        const Caller caller = caller_of(ctx);
        std::string id(ctx.req.param(0));
        const bool revoked = co_await workers_.run([&] { return service_.revoke_api_key(scope, id, caller); });
        if (!revoked) throw Error(Code::kNotFound, "No API key has the id '" + id + "'.");
        authenticator_.invalidate(ctx);
        ctx.res.no_content();
      },
      {.access = Access::kTenantAdmin, .scope = "auth:write", .summary = "Revoke an API key (effective at once)",
       .tag = "api-keys", .success_status = 204});
}

}  // namespace cdx::auth
