// The OAuth2 / OIDC provider's HTTP handlers: client registration under /api/v1/auth/clients (JSON,
// problem+json errors) and the protocol endpoints under /oauth and /.well-known (form bodies, RFC 6749
// errors, redirects, the sign-in page). Handlers parse, call OAuthService on a worker, render.
#include "auth/module.hpp"
#include "auth/resources.hpp"
#include "common/clock.hpp"
#include "common/ids.hpp"
#include "http/router.hpp"

namespace cdx::auth {

using http::Access;
using http::Context;
using http::Method;

namespace {

Caller caller_of(const Context& ctx) { return Caller{std::string(ctx.req.remote), ctx.principal.get()}; }

bool iequals(std::string_view a, std::string_view b) { return boost::beast::iequals(a, b); }

std::string_view media_type(std::string_view content_type) {
  std::string_view m = content_type.substr(0, content_type.find(';'));
  while (!m.empty() && m.back() == ' ') m.remove_suffix(1);
  while (!m.empty() && m.front() == ' ') m.remove_prefix(1);
  return m;
}

// The protocol endpoints take form bodies (RFC 6749 §3.2); an empty body is an empty form.
Form form_body(const Context& ctx) {
  if (!ctx.req.body.empty() &&
      !iequals(media_type(ctx.req.header("content-type")), "application/x-www-form-urlencoded"))
    throw OAuthError("invalid_request", "The body must be application/x-www-form-urlencoded.");
  std::string problem;
  auto form = Form::parse(ctx.req.body, &problem);
  if (!form) throw OAuthError("invalid_request", problem);
  return std::move(*form);
}

void no_store(Context& ctx) {
  ctx.res.header("Cache-Control", "no-store");
  ctx.res.header("Pragma", "no-cache");
}

void render_oauth_error(Context& ctx, const OAuthError& e) {
  nlohmann::json body = {{"error", e.error()}};
  if (!e.description().empty()) body["error_description"] = e.description();
  ctx.res.json(e.status(), body.dump());
  if (!e.www_authenticate().empty()) ctx.res.header("WWW-Authenticate", e.www_authenticate());
}

// CORS for browser clients: the answer is readable from an origin the client registered.
void allow_origin(Context& ctx, const std::vector<std::string>& origins) {
  const std::string_view origin = ctx.req.header("origin");
  if (origin.empty() || std::find(origins.begin(), origins.end(), origin) == origins.end()) return;
  ctx.res.header("Access-Control-Allow-Origin", std::string(origin));
  ctx.res.header("Vary", "Origin");
}

std::optional<std::string> cookie(const http::Request& req, std::string_view name) {
  std::string_view all = req.header("cookie");
  while (!all.empty()) {
    const size_t semi = all.find(';');
    std::string_view pair = all.substr(0, semi);
    all = semi == std::string_view::npos ? std::string_view{} : all.substr(semi + 1);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) return std::string(pair.substr(eq + 1));
  }
  return std::nullopt;
}

bool valid_nonce(std::string_view n) {
  return n.size() == 32 &&
         std::all_of(n.begin(), n.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); });
}

bool wants_html(const http::Request& req) {
  return req.header("accept").find("text/html") != std::string_view::npos;
}

void page_headers(Context& ctx) {
  ctx.res.header("Cache-Control", "no-store");
  ctx.res.header("X-Frame-Options", "DENY");
  ctx.res.header("X-Content-Type-Options", "nosniff");
  ctx.res.header("Referrer-Policy", "no-referrer");
  ctx.res.header("Content-Security-Policy",
                 "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'");
}

void redirect(Context& ctx, int status, std::string location) {
  ctx.res.set(status, "text/plain; charset=utf-8", "");
  ctx.res.header("Location", std::move(location));
  ctx.res.header("Cache-Control", "no-store");
  ctx.res.header("Referrer-Policy", "no-referrer");
}

// The sign-in form, bound by its CSRF token to this request's parameters and this browser's cookie.
void render_login(Context& ctx, const OAuthService& oauth, const AuthorizeRequest& req, int status,
                  std::string error, std::string email, bool secure_cookie) {
  std::string nonce = cookie(ctx.req, kCsrfCookie).value_or("");
  if (!valid_nonce(nonce)) nonce = random_token(32);  // kept when valid, so several open forms all work
  std::string set_cookie = std::string(kCsrfCookie) + "=" + nonce +
                           "; Path=/oauth/authorize; Max-Age=" + std::to_string(kLoginFormTtl) +
                           "; HttpOnly; SameSite=Lax";
  if (secure_cookie) set_cookie += "; Secure";
  LoginPage page;
  page.tenant_name = req.tenant.tenant.name;
  page.client_name = req.client.name;
  page.hidden = req.params;
  page.hidden.emplace_back("csrf_token", oauth.csrf_token(nonce, req));
  page.email = std::move(email);
  page.error = std::move(error);
  ctx.res.set(status, "text/html; charset=utf-8", render_login_page(page));
  ctx.res.header("Set-Cookie", std::move(set_cookie));
  page_headers(ctx);
}

void render_page_error(Context& ctx, std::string_view detail) {
  ctx.res.set(400, "text/html; charset=utf-8",
              render_error_page("This sign-in request cannot be completed", detail));
  page_headers(ctx);
}

// One authorization request, GET or POST (OIDC Core §3.1.2.1), through to a redirect or a page.
Task<void> authorize(Context& ctx, OAuthService& oauth, Service& service, WorkerPool& workers, bool post) {
  if (post && !ctx.req.body.empty() &&
      !iequals(media_type(ctx.req.header("content-type")), "application/x-www-form-urlencoded"))
    throw Error(Code::kUnsupportedMediaType, "The body must be application/x-www-form-urlencoded.");
  std::string problem;
  const std::optional<Form> form = Form::parse(post ? ctx.req.body : ctx.req.query, &problem);
  if (!form) {
    if (!wants_html(ctx.req)) throw Error(Code::kInvalidRequest, problem);
    render_page_error(ctx, problem);
    co_return;
  }

  // Unknown client or unregistered redirect_uri: a page or a problem, never a redirect.
  std::optional<AuthorizeRequest> req;
  std::optional<std::string> page_error;
  try {
    req = co_await workers.run([&] { return oauth.check_authorize(*form); });
  } catch (const Error& e) {
    if (e.code() != Code::kInvalidRequest || !wants_html(ctx.req)) throw;
    page_error = e.detail();
  }
  if (page_error) {
    render_page_error(ctx, *page_error);
    co_return;
  }
  const int redirect_status = post ? 303 : 302;
  if (req->error) {
    redirect(ctx, redirect_status, oauth.error_location(*req, *req->error));
    co_return;
  }

  const Caller caller = caller_of(ctx);
  const bool secure_cookie = service.issuer().rfind("https://", 0) == 0;
  std::optional<AuthorizingUser> user;
  std::optional<OAuthError> denied;
  const std::string_view authorization = ctx.req.header("authorization");
  const auto csrf = post ? form->get("csrf_token") : std::nullopt;
  if (csrf) {
    // The sign-in form came back.
    const auto nonce = cookie(ctx.req, kCsrfCookie);
    const auto email = form->get("email");
    const auto password = form->get("password");
    if (!nonce || !oauth.csrf_valid(*csrf, *nonce, *req)) {
      render_login(ctx, oauth, *req, 403,
                   "This sign-in form has expired or was not opened in this browser. Sign in again.",
                   email.value_or(""), secure_cookie);
      co_return;
    }
    if (!email || !password || email->size() > 254 || password->size() > 256) {
      render_login(ctx, oauth, *req, 400, "Enter your email and password.", email.value_or(""),
                   secure_cookie);
      co_return;
    }
    // Service's login steps: throttling, dummy hashing for unknown accounts, audit.
    std::optional<Error> failure;
    try {
      const std::string tenant_id = req->client.tenant_id;
      auto attempt = co_await workers.run([&] { return service.begin_login(tenant_id, *email, caller); });
      const bool ok =
          co_await service.hashers().run([&] { return Service::check_password(attempt, *password); });
      const std::string client_id = req->client.client_id;
      User u =
          co_await workers.run([&] { return service.finish_client_login(attempt, ok, caller, client_id); });
      user = AuthorizingUser{u.id, u.email, u.name, u.role, Clock::unix_seconds(), true};
    } catch (const Error& e) {
      failure = e;
    }
    if (failure) {
      if (failure->code() == Code::kTenantSuspended) {
        redirect(
            ctx, redirect_status,
            oauth.error_location(*req, OAuthError("access_denied", "The client's tenant is suspended.")));
      } else if (failure->code() == Code::kRateLimited) {
        render_login(ctx, oauth, *req, 429, "Too many failed sign-ins. Wait a few minutes, then try again.",
                     *email, secure_cookie);
        for (const auto& [k, v] : failure->headers()) ctx.res.header(k, v);
      } else if (failure->code() == Code::kUnauthorized) {
        render_login(ctx, oauth, *req, 200, "The email or password is not correct.", *email, secure_cookie);
      } else {
        throw *failure;
      }
      co_return;
    }
  } else if (!authorization.empty()) {
    // An API client acting for a signed-in user.
    constexpr std::string_view kBearer = "Bearer ";
    if (authorization.size() <= kBearer.size() || !iequals(authorization.substr(0, kBearer.size()), kBearer))
      throw Error(Code::kUnauthorized, "The Authorization header must be 'Bearer <access token>'.")
          .with_header("WWW-Authenticate", "Bearer realm=\"cdx\"");
    const std::string token(authorization.substr(kBearer.size()));
    try {
      user = co_await workers.run([&] { return oauth.user_from_bearer(*req, token); });
    } catch (const OAuthError& e) {
      denied = e;
    }
    if (denied) {
      redirect(ctx, redirect_status, oauth.error_location(*req, *denied));
      co_return;
    }
  } else if (req->prompt == "none") {
    redirect(ctx, redirect_status,
             oauth.error_location(*req, OAuthError("login_required", "The user is not signed in.")));
    co_return;
  } else {
    render_login(ctx, oauth, *req, 200, "", "", secure_cookie);
    co_return;
  }

  auto location = co_await workers.run([&] { return oauth.issue_code(*req, *user, caller); });
  redirect(ctx, redirect_status, std::move(location));
}

}  // namespace

void AuthModule::mount_oauth(http::Router& r) {
  // ---- client registration: the kit's routes (resources.cpp), and a new secret
  // --------------------------------
  r.add(Method::kPost, "/api/v1/auth/clients/{id}/secret",
        [this](Context& ctx) -> Task<void> {
          const std::string id(ctx.req.param(0));
          std::string secret, hash;  // not a structured binding: clang 14 cannot capture one below
          std::tie(secret, hash) = new_client_secret();
          kit::Caller c = kit::caller_of(ctx, clients_);
          bool rotated = false;
          co_await kit_.write_answer(ctx, "POST /api/v1/auth/clients/{id}/secret", [&](db::Tx& tx) {
            auto row = kit_.find(tx, c, clients_, id);
            if (!row)
              throw Error(Code::kNotFound, "No OAuth client of this tenant has that id or client_id.");
            if (row->at("type") == "public") throw Error(Code::kConflict, "A public client has no secret.");
            // The old secret stops working with this commit; the hooks audit client.secret_rotated.
            ctx.res.json(200, kit_.update(tx, c, clients_, id, {{"secret_hash", hash}}).dump());
            rotated = true;
          });
          if (rotated) {  // the secret joins the answer after it was kept for an Idempotency-Key replay
            nlohmann::json out = nlohmann::json::parse(ctx.res.body);
            out["client_secret"] = secret;
            ctx.res.json(200, out.dump());
          }
          ctx.res.header("Cache-Control", "no-store");
        },
        {.access = Access::kTenantAdmin,
         .scope = "auth:write",
         .summary = "Replace a confidential client's secret (the old one stops working at once); shown once",
         .tag = "oauth-clients",
         .response_schema = "OAuthClientCreated"});

  // ---- protocol endpoints
  // -----------------------------------------------------------------------------------
  const auto discovery = [this](Context& ctx) {
    ctx.res.set(200, "application/json", oauth_.discovery());
    ctx.res.header("Cache-Control", "public, max-age=300");
    ctx.res.header("Access-Control-Allow-Origin", "*");
  };
  r.add_sync(Method::kGet, "/.well-known/openid-configuration", discovery,
             {.summary = "OpenID Connect discovery (also RFC 8414 metadata)",
              .tag = "oauth",
              .response_schema = "OidcDiscovery"});
  r.add_sync(Method::kGet, "/.well-known/oauth-authorization-server", discovery,
             {.summary = "OAuth 2.0 authorization server metadata (RFC 8414)",
              .tag = "oauth",
              .response_schema = "OidcDiscovery"});

  r.add(Method::kGet, "/oauth/authorize",
        [this](Context& ctx) -> Task<void> { co_await authorize(ctx, oauth_, service_, workers_, false); },
        {.summary =
             "Authorization endpoint: response_type=code with PKCE S256. Authenticates the user by Bearer "
             "token (answers 302 to redirect_uri) or with a sign-in page",
         .tag = "oauth"});
  r.add(
      Method::kPost, "/oauth/authorize",
      [this](Context& ctx) -> Task<void> { co_await authorize(ctx, oauth_, service_, workers_, true); },
      {.summary =
           "Authorization endpoint, form-encoded: the sign-in page posts here (email, password, csrf_token)",
       .tag = "oauth",
       .form_schema = "OAuthSignInForm"});

  r.add(
      Method::kPost, "/oauth/token",
      [this](Context& ctx) -> Task<void> {
        std::vector<std::string> origins;
        try {
          const Form form = form_body(ctx);
          const std::string authorization(ctx.req.header("authorization"));
          const Caller caller = caller_of(ctx);
          auto out =
              co_await workers_.run([&] { return oauth_.token(form, authorization, caller, &origins); });
          ctx.res.json(200, out.dump());
        } catch (const OAuthError& e) {
          if (e.revoked_sessions()) authenticator_.invalidate(ctx);  // the revoked tokens stop at once
          render_oauth_error(ctx, e);
        }
        no_store(ctx);
        allow_origin(ctx, origins);
      },
      {.summary = "Token endpoint (form-encoded): grants authorization_code (PKCE), refresh_token, "
                  "client_credentials; client auth by HTTP Basic or client_id/client_secret; RFC 6749 errors",
       .tag = "oauth",
       .form_schema = "OAuthTokenRequest",
       .response_schema = "OAuthTokenAnswer"});

  r.add(Method::kPost, "/oauth/revoke",
        [this](Context& ctx) -> Task<void> {
          std::vector<std::string> origins;
          try {
            const Form form = form_body(ctx);
            const std::string authorization(ctx.req.header("authorization"));
            const Caller caller = caller_of(ctx);
            const bool revoked =
                co_await workers_.run([&] { return oauth_.revoke(form, authorization, caller, &origins); });
            if (revoked) authenticator_.invalidate(ctx);
            ctx.res.set(200, "text/plain; charset=utf-8", "");
          } catch (const OAuthError& e) {
            render_oauth_error(ctx, e);
          }
          no_store(ctx);
          allow_origin(ctx, origins);
        },
        {.summary =
             "Revoke a refresh or access token (RFC 7009): ends its session; unknown tokens answer 200 too",
         .tag = "oauth",
         .form_schema = "OAuthTokenOnly"});

  r.add(Method::kPost, "/oauth/introspect",
        [this](Context& ctx) -> Task<void> {
          try {
            const Form form = form_body(ctx);
            const std::string authorization(ctx.req.header("authorization"));
            auto out = co_await workers_.run([&] { return oauth_.introspect(form, authorization); });
            ctx.res.json(200, out.dump());
          } catch (const OAuthError& e) {
            render_oauth_error(ctx, e);
          }
          no_store(ctx);
        },
        {.summary = "Token introspection (RFC 7662) for a confidential client of the token's tenant",
         .tag = "oauth",
         .form_schema = "OAuthTokenOnly",
         .response_schema = "OAuthIntrospection"});

  const auto userinfo = [this](Context& ctx) -> Task<void> {
    std::vector<std::string> origins;
    try {
      const std::string_view authorization = ctx.req.header("authorization");
      constexpr std::string_view kBearer = "Bearer ";
      if (authorization.size() <= kBearer.size() ||
          !iequals(authorization.substr(0, kBearer.size()), kBearer))
        throw OAuthError("invalid_request", "A Bearer access token is required.", 401)
            .challenge("Bearer realm=\"cdx\"");
      const std::string token(authorization.substr(kBearer.size()));
      auto out = co_await workers_.run([&] { return oauth_.userinfo(token, &origins); });
      ctx.res.json(200, out.dump());
    } catch (const OAuthError& e) {
      render_oauth_error(ctx, e);
    }
    no_store(ctx);
    allow_origin(ctx, origins);
  };
  r.add(Method::kGet, "/oauth/userinfo", userinfo,
        {.summary = "OIDC userinfo for a user's access token",
         .tag = "oauth",
         .response_schema = "OidcUserInfo"});
  r.add(Method::kPost, "/oauth/userinfo", userinfo,
        {.summary = "OIDC userinfo for a user's access token",
         .tag = "oauth",
         .response_schema = "OidcUserInfo"});
}

}  // namespace cdx::auth
