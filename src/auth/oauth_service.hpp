// The OAuth2 / OpenID Connect provider's rules (RFC 6749, 7636, 7009, 7662, 8414, OIDC Core 1.0) (client
// registration is a kit resource, resources.cpp):
// authorization codes with PKCE S256, the token endpoint's grants, ID tokens, revocation,
// introspection, userinfo, discovery and signing-key rotation. Blocking methods: run them on a worker.
// Errors the protocol names are thrown as OAuthError (the routes render them as RFC 6749 §5.2 JSON or as a
// redirect); everything else is a cdx::Error (problem+json).
//   auto form = Form::parse(ctx.req.body);
//   nlohmann::json answer = oauth.token(*form, ctx.req.header("authorization"), caller, &origins);
#pragma once
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "auth/oauth_store.hpp"
#include "auth/service.hpp"
#include "common/error.hpp"

namespace cdx::auth {

// An error the protocol defines: rendered {"error": error, "error_description": description}.
class OAuthError : public std::exception {
 public:
  OAuthError(std::string error, std::string description, int status = 400)
      : error_(std::move(error)), description_(std::move(description)), status_(status) {}
  const std::string& error() const { return error_; }
  const std::string& description() const { return description_; }
  int status() const { return status_; }
  const std::string& www_authenticate() const { return www_authenticate_; }
  OAuthError& challenge(std::string value) {
    www_authenticate_ = std::move(value);
    return *this;
  }
  // The failure revoked sessions (a replayed code or refresh token): credential caches must drop them.
  OAuthError& revoking() {
    revoked_sessions_ = true;
    return *this;
  }
  bool revoked_sessions() const { return revoked_sessions_; }
  const char* what() const noexcept override { return description_.c_str(); }

 private:
  std::string error_, description_;
  int status_;
  std::string www_authenticate_;  // set on 401s
  bool revoked_sessions_ = false;
};

// An application/x-www-form-urlencoded body or query string, decoded once.
class Form {
 public:
  // nullopt (and why, in `problem`) for a repeated parameter (RFC 6749 §3.1), a bad %-escape, text that is
  // not UTF-8 or holds control characters, or more than 64 parameters.
  static std::optional<Form> parse(std::string_view encoded, std::string* problem = nullptr);
  // The value; nullopt when absent or empty (RFC 6749 §3.1: a parameter without a value counts as omitted).
  std::optional<std::string> get(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

// ---- pure rules (oauth_service_test.cpp)
// --------------------------------------------------------------------

// Strict application/x-www-form-urlencoded decoding ('+' is a space); nullopt on a malformed %-escape.
std::optional<std::string> form_decode(std::string_view s);
std::string url_encode(std::string_view s);  // every byte but the RFC 3986 unreserved ones as %XX
bool valid_utf8_text(std::string_view s);    // UTF-8 without control characters

// PKCE (RFC 7636): a verifier is 43–128 of [A-Za-z0-9-._~]; an S256 challenge is
// BASE64URL(SHA-256(verifier)).
bool valid_code_verifier(std::string_view verifier);
bool valid_code_challenge(std::string_view challenge);
std::string pkce_s256(std::string_view verifier);
bool pkce_matches(std::string_view verifier, std::string_view challenge);  // constant time

// redirect_uri_problem and origin_problem: common/validate.hpp.

// "Basic base64(urlencoded(id):urlencoded(secret))" (RFC 6749 §2.3.1); nullopt when malformed.
std::optional<std::pair<std::string, std::string>> parse_basic_credentials(std::string_view header);

// Space-separated scope tokens (RFC 6749 §3.3), duplicates dropped; nullopt when a token has a character
// scope-token does not allow.
std::optional<std::vector<std::string>> split_scope(std::string_view scope);
std::string join_scope(const std::vector<std::string>& scopes);

// uri with the parameters appended to its query (with '?' or '&').
std::string add_query(std::string_view uri, const std::vector<std::pair<std::string, std::string>>& params);

// The login form's CSRF token: "<expiry>.<base64url HMAC-SHA256(key, expiry | nonce | binding)>", where nonce
// is the value of the browser's CSRF cookie and binding the authorization request's parameters.
std::string make_csrf_token(std::string_view key, std::string_view nonce, std::string_view binding,
                            int64_t expires_at);
bool check_csrf_token(std::string_view key, std::string_view token, std::string_view nonce,
                      std::string_view binding, int64_t now);

// ---- HTML (oauth_login_page.cpp)
// -----------------------------------------------------------------------------

std::string html_escape(std::string_view s);
struct LoginPage {
  std::string tenant_name, client_name;
  std::vector<std::pair<std::string, std::string>> hidden;  // the authorization request and csrf_token
  std::string email;                                        // kept after a failed attempt
  std::string error;                                        // shown above the form
};
std::string render_login_page(const LoginPage& page);
std::string render_error_page(std::string_view title, std::string_view detail);

// ---- the provider
// -------------------------------------------------------------------------------------------

inline constexpr int64_t kCodeTtl = 60;        // seconds an authorization code lives
inline constexpr int64_t kLoginFormTtl = 600;  // seconds a login form (its CSRF token) stays valid
inline constexpr std::string_view kCsrfCookie = "cdx_oauth_csrf";

// A validated authorization request. `error`, when set, goes back to redirect_uri.
struct AuthorizeRequest {
  OAuthClient client;
  core::TenantInfo tenant;
  std::optional<db::TenantScope> scope;  // the client's tenant; always set
  std::string redirect_uri;
  bool redirect_uri_explicit = true;
  std::optional<std::string> state, nonce, prompt;
  std::vector<std::string> scopes;
  std::string code_challenge;
  std::vector<std::pair<std::string, std::string>>
      params;  // the request's own parameters, for the login form
  std::optional<OAuthError> error;
};

// The user who authorizes a request.
struct AuthorizingUser {
  std::string id, email, name, role;
  int64_t auth_time = 0;
  bool password_login = false;  // signed in on the login page (else through a Bearer token)
};

class OAuthService {
 public:
  OAuthService(OAuthStore& store, Service& service);

  void start();  // seals and loads the login form's CSRF key, notes the signing keys in use

  // GET/POST /oauth/authorize. Throws cdx::Error (400, never a redirect) when client_id or redirect_uri is
  // missing, unknown or unregistered; other problems land in the answer's `error`.
  AuthorizeRequest check_authorize(const Form& params);
  // The user behind a Bearer access token. cdx::Error 401 when the token is not valid (or its user is
  // disabled, or the session ended); OAuthError access_denied when it is valid but not a user of the
  // client's tenant.
  AuthorizingUser user_from_bearer(const AuthorizeRequest& req, std::string_view token);
  // Stores a code and answers the redirect location with code, state and iss.
  std::string issue_code(const AuthorizeRequest& req, const AuthorizingUser& user, const Caller& caller);
  std::string error_location(const AuthorizeRequest& req, const OAuthError& e) const;
  std::string csrf_token(std::string_view nonce, const AuthorizeRequest& req) const;
  bool csrf_valid(std::string_view token, std::string_view nonce, const AuthorizeRequest& req) const;

  // POST /oauth/token, /oauth/revoke, /oauth/introspect; GET /oauth/userinfo. `origins` receives the
  // authenticated client's allowed origins (for CORS), also when the request then fails.
  nlohmann::json token(const Form& form, std::string_view authorization, const Caller& caller,
                       std::vector<std::string>* origins);
  // True when a session was revoked.
  bool revoke(const Form& form, std::string_view authorization, const Caller& caller,
              std::vector<std::string>* origins);
  nlohmann::json introspect(const Form& form, std::string_view authorization);
  nlohmann::json userinfo(std::string_view access_token, std::vector<std::string>* origins);
  const std::string& discovery() const { return discovery_; }

  // Signing keys: a new active key (old ones keep verifying); retiring keys that stopped signing at least
  // inactive_for seconds ago; and whether the keys in use changed since the last look (another process
  // rotated them).
  std::string rotate_signing_key();
  // The provider's stored secrets (the login form's CSRF key) not sealed with the current key encryption key
  // sealed with it, like Service::seal_signing_keys. Answers how many.
  size_t seal_secrets();
  std::vector<std::string> retire_signing_keys(int64_t inactive_for);
  bool signing_keys_changed();

  void purge_tenant(const db::TenantScope& scope) { store_.purge_tenant(scope); }

 private:
  struct ClientContext {
    OAuthClient client;
    Service::CredentialTenant tenant;
  };
  std::optional<ClientContext> find_client(std::string_view client_id);
  ClientContext authenticate_client(const Form& form, std::string_view authorization);
  nlohmann::json grant_authorization_code(const Form& form, const ClientContext& cc, const Caller& caller);
  nlohmann::json grant_refresh_token(const Form& form, const ClientContext& cc, const Caller& caller);
  nlohmann::json grant_client_credentials(const Form& form, const ClientContext& cc);
  std::string sign_user_access(const ClientContext& cc, const User& user, const std::string& scope,
                               const std::string& family_id, int64_t ttl) const;
  std::string sign_id_token(const ClientContext& cc, const User& user, const std::vector<std::string>& scopes,
                            const std::optional<std::string>& nonce, int64_t auth_time,
                            const std::string& access_token, int64_t ttl) const;
  std::string login_binding(const AuthorizeRequest& req) const;

  OAuthStore& store_;
  Service& service_;
  std::string issuer_;
  std::string discovery_;
  std::string csrf_key_;
  std::mutex keys_mutex_;
  std::string key_fingerprint_;
};

}  // namespace cdx::auth
