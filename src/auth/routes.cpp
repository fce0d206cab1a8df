// Auth's HTTP handlers: parse, call the service on a worker, render. Access and scopes are declared
// per route; the Authenticator enforces them before a handler runs.
#include "auth/module.hpp"
#include "auth/resources.hpp"
#include "common/clock.hpp"
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

using nlohmann::json;

// A declared body (resources.cpp): 400 for bad JSON, every bad or unknown field named in one 422.
json read(const kit::Resource& body, const Context& ctx) {
  return kit::read_body(body, ctx.req.body, kit::Mode::kCreate);
}

std::string text(const json& in, const char* name) {
  auto it = in.find(name);
  return it != in.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The tenant a body names, else X-Tenant-ID; empty when neither does.
std::string tenant_named(const json& in, const Context& ctx) {
  std::string t = text(in, "tenant");
  return t.empty() ? std::string(ctx.req.header("x-tenant-id")) : t;
}

// Browser sessions (the dashboard): a request with `X-Refresh-Token: cookie` gets its refresh token in an
// HttpOnly, SameSite=Strict cookie scoped to the refresh path, never in the JSON, so no script can read
// it. The header is not one a cross-site form can send, nor one the CORS preflight allows: another site
// cannot make a browser spend the cookie.
constexpr std::string_view kRefreshCookie = "cdx_refresh";
constexpr std::string_view kRefreshPath = "/api/v1/auth/refresh";

bool cookie_session(const Context& ctx) { return ctx.req.header("x-refresh-token") == "cookie"; }

std::string refresh_cookie(std::string_view value, int64_t max_age, bool secure) {
  return fmt::format("{}={}; Path={}; Max-Age={}; HttpOnly; SameSite=Strict{}", kRefreshCookie, value,
                     kRefreshPath, max_age, secure ? "; Secure" : "");
}

// The cookie's value in a Cookie header ("a=1; cdx_refresh=…"); empty when absent.
std::string_view cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const size_t end = header.find(';');
    std::string_view pair = header.substr(0, end);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    if (pair.size() > name.size() && pair.starts_with(name) && pair[name.size()] == '=')
      return pair.substr(name.size() + 1);
    if (end == std::string_view::npos) break;
    header.remove_prefix(end + 1);
  }
  return {};
}

const FieldError kTenantRequired{"tenant",
                                 "is required: in the body, as X-Tenant-ID, or through a publishable key"};

void request_password_reset_later(WorkerPool& workers, Service& service, std::string tenant,
                                  std::string email, Caller caller) {
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
  kit_.mount(r);  // users, API keys and OAuth clients (resources.cpp)
  mount_oauth(r);

  r.add_sync(Method::kGet, "/.well-known/jwks.json",
             [this](Context& ctx) {
               ctx.res.set(200, "application/json", service_.keyring()->jwks_json());
               ctx.res.header("Cache-Control", "public, max-age=300");
             },
             {.summary = "Public keys that sign access tokens (JWKS)", .tag = "auth"});

  r.add(Method::kGet, "/api/v1/auth/audit",
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
        {.access = Access::kTenantAdmin,
         .scope = "auth:read",
         .summary = "The tenant's audit log of security-relevant actions, newest first",
         .tag = "audit",
         .response_schema = "AuditEntry",
         .list = true,
         .query_params = {"action", "actor_id"}});
}

void AuthModule::add_openapi_schemas(nlohmann::json& schemas) const {
  kit_.add_schemas(schemas);
  // A valid client for the default grant (authorization_code) needs a redirect URI: the example shows one.
  schemas["OAuthClientCreate"]["examples"] = {
      {{"name", "Mobile app"}, {"redirect_uris", {"https://app.example.com/callback"}}}};
}

// A token answer: as is, or with its refresh token moved into the session cookie.
void AuthModule::answer_tokens(Context& ctx, json out) const {
  if (cookie_session(ctx)) {
    if (auto it = out.find("refresh_token"); it != out.end()) {
      ctx.res.header("Set-Cookie", refresh_cookie(it->get<std::string>(), service_.config().refresh_token_ttl,
                                                  service_.config().issuer().starts_with("https://")));
      out.erase(it);
    }
  }
  ctx.res.json(200, out.dump());
  no_store(ctx);
}

void AuthModule::mount_sessions(http::Router& r) {
  r.add(Method::kPost, "/api/v1/auth/superadmin/login",
        [this](Context& ctx) -> Task<void> {
          const json in = read(bodies::superadmin_login(), ctx);
          const std::string username = text(in, "username"), password = text(in, "password");
          const Caller caller = caller_of(ctx);
          auto out =
              co_await workers_.run([&] { return service_.superadmin_login(username, password, caller); });
          answer_tokens(ctx, std::move(out));
        },
        {.summary = "Log the SUPERADMIN in",
         .tag = "auth",
         .request_schema = "SuperadminLogin",
         .response_schema = "TokenAnswer"});

  r.add(Method::kPost, "/api/v1/auth/login",
        [this](Context& ctx) -> Task<void> {
          const std::string_view key = ctx.req.header("x-api-key");
          const json in = read(bodies::login(), ctx);
          std::string tenant = tenant_named(in, ctx);
          if (tenant.empty() && key.empty()) throw Error::validation({kTenantRequired});
          const std::string email = text(in, "email"), password = text(in, "password");
          if (tenant.empty()) tenant = co_await authenticator_.tenant_of_publishable_key(ctx);
          const Caller caller = caller_of(ctx);
          auto attempt = co_await workers_.run([&] { return service_.begin_login(tenant, email, caller); });
          const bool ok =
              co_await service_.hashers().run([&] { return Service::check_password(attempt, password); });
          auto out = co_await workers_.run([&] { return service_.finish_login(attempt, ok, caller); });
          answer_tokens(ctx, std::move(out));
        },
        {.summary = "Log a tenant user in",
         .tag = "auth",
         .request_schema = "Login",
         .response_schema = "TokenAnswer"});

  r.add(Method::kPost, "/api/v1/auth/refresh",
        [this](Context& ctx) -> Task<void> {
          const bool cookie = cookie_session(ctx);
          std::string token;
          if (!ctx.req.body.empty()) token = text(read(bodies::refresh(), ctx), "refresh_token");
          if (token.empty() && cookie) token = cookie_value(ctx.req.header("cookie"), kRefreshCookie);
          if (token.empty()) {
            if (!cookie) throw Error::validation({{"refresh_token", "is required"}});
            throw Error(Code::kUnauthorized, "No session: sign in.");
          }
          const Caller caller = caller_of(ctx);
          try {
            answer_tokens(ctx, co_await workers_.run([&] { return service_.refresh(token, caller); }));
          } catch (Error& e) {
            if (cookie)
              e.with_header("Set-Cookie", refresh_cookie("", 0, false));  // a spent session's cookie goes
            throw;
          }
        },
        {.summary =
             "Exchange a refresh token for a new pair; the old one is spent (reuse revokes the session). "
             "With X-Refresh-Token: cookie, the refresh token comes from and goes to the session cookie",
         .tag = "auth",
         .request_schema = "Refresh",
         .response_schema = "TokenAnswer"});

  r.add(Method::kPost, "/api/v1/auth/logout",
        [this](Context& ctx) -> Task<void> {
          std::optional<std::string> token;
          if (!ctx.req.body.empty()) {
            const json in = read(bodies::logout(), ctx);
            if (auto t = text(in, "refresh_token"); !t.empty()) token = t;
          }
          if (cookie_session(ctx)) {
            if (!token)
              if (auto c = cookie_value(ctx.req.header("cookie"), kRefreshCookie); !c.empty())
                token = std::string(c);
            ctx.res.header("Set-Cookie", refresh_cookie("", 0, false));
          }
          const Caller caller = caller_of(ctx);
          const Principal& who = *ctx.principal;
          co_await workers_.run([&] { service_.logout(who, token, caller); });
          authenticator_.invalidate(ctx);  // the session's access tokens stop working at once
          ctx.res.no_content();
        },
        {.access = Access::kAuthenticated,
         .summary = "End the session: revokes its refresh token family",
         .tag = "auth",
         .request_schema = "Logout",
         .request_optional = true,
         .success_status = 204});

  r.add(Method::kPost, "/api/v1/auth/register",
        [this](Context& ctx) -> Task<void> {
          const std::string_view key = ctx.req.header("x-api-key");
          json in = read(bodies::sign_up(), ctx);
          std::string tenant = tenant_named(in, ctx);
          if (tenant.empty() && key.empty()) throw Error::validation({kTenantRequired});
          in.erase("tenant");
          if (tenant.empty()) tenant = co_await authenticator_.tenant_of_publishable_key(ctx);
          auto out = co_await workers_.run([&] { return service_.register_user(tenant, in, ctx); });
          ctx.res.json(201, out.dump());
          no_store(ctx);
        },
        {.summary = "Self sign-up as a CLIENT, where the tenant's settings.allow_registration is true",
         .tag = "auth",
         .request_schema = "Register",
         .response_schema = "TokenAnswer",
         .success_status = 201});

  r.add(Method::kPost, "/api/v1/auth/password/forgot",
        [this](Context& ctx) -> Task<void> {
          const json in = read(bodies::password_forgot(), ctx);
          const std::string tenant = tenant_named(in, ctx);
          if (tenant.empty())
            throw Error::validation({{"tenant", "is required: in the body or as X-Tenant-ID"}});
          const std::string email = text(in, "email");
          // The work happens after the answer, so a known and an unknown account answer alike, in time too.
          request_password_reset_later(workers_, service_, tenant, email, caller_of(ctx));
          ctx.res.json(
              202, R"({"status":"accepted","detail":"If the account exists, a reset link is on its way."})");
          co_return;  // without a co_await or co_return this would not be a coroutine
        },
        {.summary = "Mail a single-use password reset link (same answer whether or not the account exists)",
         .tag = "auth",
         .request_schema = "PasswordForgot",
         .success_status = 202});

  r.add(Method::kPost, "/api/v1/auth/password/reset",
        [this](Context& ctx) -> Task<void> {
          const json in = read(bodies::password_reset(), ctx);
          const std::string token = text(in, "token"), password = text(in, "password");
          const Caller caller = caller_of(ctx);
          co_await workers_.run([&] { service_.reset_password(token, password, caller); });
          authenticator_.invalidate(ctx);
          ctx.res.no_content();
        },
        {.summary = "Set a new password with a reset token; ends every session of the user",
         .tag = "auth",
         .request_schema = "PasswordReset",
         .success_status = 204});

  r.add_sync(Method::kGet, "/api/v1/auth/me",
             [](Context& ctx) { ctx.res.set(200, "application/json", ctx.principal->me_json); },
             {.access = Access::kAuthenticated,
              .summary = "The caller's identity",
              .tag = "auth",
              .response_schema = "Me"});
}

}  // namespace cdx::auth
