#include "auth/oauth_service.hpp"

#include "common/validate.hpp"

#include <sodium.h>

#include <algorithm>
#include <charconv>

#include "common/clock.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"

namespace cdx::auth {

namespace {

using json = nlohmann::json;

constexpr size_t kCodeLen = 43;  // ~256 bits
// OAuth refresh tokens are "<tenant id>.<48 base62>": a length first-party refresh tokens (43) do not have,
// so /api/v1/auth/refresh refuses them and only the client they were issued to can use them, here.
constexpr size_t kRefreshSecretLen = 48;
constexpr size_t kFirstPartyRefreshSecretLen = 43;
constexpr int64_t kCodeKeepSeconds = 3600;  // used and expired codes are kept this long to recognise replays

// The authorization request parameters the login form carries, in the order its CSRF token binds them.
constexpr std::string_view kAuthorizeParams[] = {
    "response_type",         "client_id", "redirect_uri",  "scope", "state", "code_challenge",
    "code_challenge_method", "nonce",     "response_mode", "prompt"};

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

bool looks_like_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

bool looks_like_jwt(std::string_view t) { return std::count(t.begin(), t.end(), '.') == 2; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

OAuthError invalid_request(std::string d) { return OAuthError("invalid_request", std::move(d)); }
OAuthError invalid_grant(std::string d) { return OAuthError("invalid_grant", std::move(d)); }
OAuthError invalid_scope(std::string d) { return OAuthError("invalid_scope", std::move(d)); }
OAuthError unauthorized_client(std::string d) { return OAuthError("unauthorized_client", std::move(d)); }
OAuthError invalid_client(std::string d) {
  return OAuthError("invalid_client", std::move(d), 401).challenge("Basic realm=\"cdx\"");
}
OAuthError invalid_token(const std::string& d) {
  return OAuthError("invalid_token", d, 401)
      .challenge("Bearer realm=\"cdx\", error=\"invalid_token\", error_description=\"" + d + "\"");
}

// OIDC Core §3.1.3.6: the left half of SHA-256 of the access token, base64url.
std::string at_hash(std::string_view access_token) {
  unsigned char digest[32];
  sha256(access_token, digest);
  return base64url_encode(std::string_view(reinterpret_cast<const char*>(digest), 16));
}

std::optional<std::string> string_claim(const json& extra, const char* name) {
  if (!extra.is_object()) return std::nullopt;
  auto it = extra.find(name);
  if (it == extra.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// scheme://authority[rest] checks shared by redirect URIs and origins.
}  // namespace

// ---- pure rules
// ------------------------------------------------------------------------------------------------

std::optional<std::string> form_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex_value(s[i + 1]);
      const int lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string url_encode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3 / 2);
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

bool valid_utf8_text(std::string_view s) { return clean_text(s, false); }

bool valid_code_verifier(std::string_view v) {
  if (v.size() < 43 || v.size() > 128) return false;
  return std::all_of(v.begin(), v.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == '~';
  });
}

bool valid_code_challenge(std::string_view c) {
  if (c.size() != 43) return false;
  return std::all_of(c.begin(), c.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_';
  });
}

std::string pkce_s256(std::string_view verifier) {
  unsigned char digest[32];
  sha256(verifier, digest);
  return base64url_encode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

bool pkce_matches(std::string_view verifier, std::string_view challenge) {
  if (!valid_code_verifier(verifier) || !valid_code_challenge(challenge)) return false;
  return constant_time_equal(pkce_s256(verifier), challenge);
}

std::optional<std::pair<std::string, std::string>> parse_basic_credentials(std::string_view header) {
  constexpr std::string_view kBasic = "Basic ";
  if (header.size() <= kBasic.size() || !iequals(header.substr(0, kBasic.size()), kBasic))
    return std::nullopt;
  std::string_view b64 = header.substr(kBasic.size());
  while (!b64.empty() && b64.front() == ' ') b64.remove_prefix(1);
  while (!b64.empty() && b64.back() == ' ') b64.remove_suffix(1);
  if (b64.empty() || b64.size() > 2048) return std::nullopt;
  std::string raw(b64.size(), '\0');
  size_t len = 0;
  const char* end = nullptr;
  const int variant =
      b64.back() == '=' ? sodium_base64_VARIANT_ORIGINAL : sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(raw.data()), raw.size(), b64.data(), b64.size(),
                        nullptr, &len, &end, variant) != 0 ||
      end != b64.data() + b64.size())
    return std::nullopt;
  raw.resize(len);
  const size_t colon = raw.find(':');
  if (colon == std::string::npos) return std::nullopt;
  auto id = form_decode(std::string_view(raw).substr(0, colon));
  auto secret = form_decode(std::string_view(raw).substr(colon + 1));
  if (!id || !secret || !valid_utf8_text(*id) || !valid_utf8_text(*secret)) return std::nullopt;
  return std::pair{std::move(*id), std::move(*secret)};
}

std::optional<std::vector<std::string>> split_scope(std::string_view scope) {
  std::vector<std::string> out;
  while (!scope.empty()) {
    const size_t sp = scope.find(' ');
    const std::string_view token = scope.substr(0, sp);
    scope = sp == std::string_view::npos ? std::string_view{} : scope.substr(sp + 1);
    if (token.empty()) continue;
    if (token.size() > 128) return std::nullopt;
    for (char c : token) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x21 || u > 0x7e || c == '"' || c == '\\') return std::nullopt;  // NQCHAR (RFC 6749 App. A)
    }
    if (!contains(out, token)) out.emplace_back(token);
    if (out.size() > 64) return std::nullopt;
  }
  return out;
}

std::string join_scope(const std::vector<std::string>& scopes) {
  std::string out;
  for (const auto& s : scopes) {
    if (!out.empty()) out += ' ';
    out += s;
  }
  return out;
}

std::string add_query(std::string_view uri, const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out(uri);
  bool first = out.find('?') == std::string::npos;
  if (first) {
    out += '?';
  } else if (out.back() == '?' || out.back() == '&') {
    first = true;
  }
  for (const auto& [name, value] : params) {
    if (!first) out += '&';
    first = false;
    out += url_encode(name);
    out += '=';
    out += url_encode(value);
  }
  return out;
}

namespace {
std::string csrf_mac(std::string_view key, std::string_view nonce, std::string_view binding,
                     int64_t expires_at) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  auto feed = [&](std::string_view s) {
    crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(s.data()), s.size());
  };
  feed("cdx oauth login form v1\n");
  feed(std::to_string(expires_at));
  feed("\n");
  feed(nonce);
  feed("\n");
  feed(binding);
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_final(&st, mac);
  return base64url_encode(std::string_view(reinterpret_cast<const char*>(mac), sizeof mac));
}
}  // namespace

std::string make_csrf_token(std::string_view key, std::string_view nonce, std::string_view binding,
                            int64_t expires_at) {
  return std::to_string(expires_at) + "." + csrf_mac(key, nonce, binding, expires_at);
}

bool check_csrf_token(std::string_view key, std::string_view token, std::string_view nonce,
                      std::string_view binding, int64_t now) {
  if (nonce.empty() || key.empty()) return false;
  const size_t dot = token.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot > 19) return false;
  int64_t expires_at = 0;
  auto [p, ec] = std::from_chars(token.data(), token.data() + dot, expires_at);
  if (ec != std::errc() || p != token.data() + dot) return false;
  if (expires_at <= now) return false;
  return constant_time_equal(token.substr(dot + 1), csrf_mac(key, nonce, binding, expires_at));
}

// ---- Form
// --------------------------------------------------------------------------------------------------

std::optional<Form> Form::parse(std::string_view encoded, std::string* problem) {
  auto fail = [&](std::string why) -> std::optional<Form> {
    if (problem) *problem = std::move(why);
    return std::nullopt;
  };
  Form f;
  while (!encoded.empty()) {
    const size_t amp = encoded.find('&');
    const std::string_view pair = encoded.substr(0, amp);
    encoded = amp == std::string_view::npos ? std::string_view{} : encoded.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    auto name = form_decode(pair.substr(0, eq));
    auto value = eq == std::string_view::npos ? std::optional<std::string>(std::string())
                                              : form_decode(pair.substr(eq + 1));
    if (!name || !value) return fail("A parameter has a malformed %-escape.");
    if (!valid_utf8_text(*name) || !valid_utf8_text(*value))
      return fail("Parameters must be UTF-8 text without control characters.");
    if (name->empty()) continue;
    if (name->size() > 64) return fail("A parameter name is longer than 64 characters.");
    for (const auto& [n, v] : f.items_)
      if (n == *name) return fail("The parameter '" + *name + "' is repeated.");
    if (f.items_.size() >= 64) return fail("The request has more than 64 parameters.");
    f.items_.emplace_back(std::move(*name), std::move(*value));
  }
  return f;
}

std::optional<std::string> Form::get(std::string_view name) const {
  for (const auto& [n, v] : items_)
    if (n == name) return v.empty() ? std::nullopt : std::optional<std::string>(v);
  return std::nullopt;
}

// ---- clients
// -----------------------------------------------------------------------------------------------

OAuthService::OAuthService(OAuthStore& store, Service& service)
    : store_(store), service_(service), issuer_(service.issuer()) {
  std::vector<std::string> scopes = oidc_scopes();
  scopes.insert(scopes.end(), api_scopes().begin(), api_scopes().end());
  const std::vector<std::string> client_auth = {"client_secret_basic", "client_secret_post", "none"};
  nlohmann::ordered_json d = {
      {"issuer", issuer_},
      {"authorization_endpoint", issuer_ + "/oauth/authorize"},
      {"token_endpoint", issuer_ + "/oauth/token"},
      {"userinfo_endpoint", issuer_ + "/oauth/userinfo"},
      {"jwks_uri", issuer_ + "/.well-known/jwks.json"},
      {"revocation_endpoint", issuer_ + "/oauth/revoke"},
      {"introspection_endpoint", issuer_ + "/oauth/introspect"},
      {"response_types_supported", {"code"}},
      {"response_modes_supported", {"query"}},
      {"grant_types_supported", grant_types()},
      {"subject_types_supported", {"public"}},
      {"id_token_signing_alg_values_supported", {"ES256"}},
      {"token_endpoint_auth_methods_supported", client_auth},
      {"revocation_endpoint_auth_methods_supported", client_auth},
      {"introspection_endpoint_auth_methods_supported", {"client_secret_basic", "client_secret_post"}},
      {"code_challenge_methods_supported", {"S256"}},
      {"scopes_supported", scopes},
      {"claims_supported",
       {"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "email", "email_verified",
        "name", "preferred_username", "tid"}},
      {"prompt_values_supported", {"none", "login"}},
      {"authorization_response_iss_parameter_supported", true},
      {"request_parameter_supported", false},
      {"request_uri_parameter_supported", false},
      {"claims_parameter_supported", false},
  };
  discovery_ = d.dump();
}

namespace {
std::string secret_label(const std::string& name) { return "oauth_secret:" + name; }
}  // namespace

size_t OAuthService::seal_secrets() {
  const KeyEncryption& kek = service_.keks();
  std::vector<std::pair<std::pair<std::string, Sealed>, std::string>> pending;
  for (auto& row : store_.platform_secrets()) {
    if (row.second.kek_id == kek.id()) continue;
    std::string plain =
        row.second.kek_id.empty() ? row.second.text : kek.open(row.second, secret_label(row.first));
    pending.emplace_back(std::move(row), std::move(plain));  // every one opened before anything changes
  }
  size_t sealed = 0;
  for (auto& [row, plain] : pending) {
    if (store_.platform_reseal_secret(row.first, row.second, kek.seal(plain, secret_label(row.first))))
      ++sealed;
    sodium_memzero(plain.data(), plain.size());
  }
  if (sealed > 0) {
    service_.store().database().scrub();
    log::info("provider secrets sealed with the key encryption key",
              {{"kek_id", kek.id()}, {"sealed", sealed}});
  }
  return sealed;
}

void OAuthService::start() {
  const std::string name = "oauth_login_csrf";
  seal_secrets();
  auto stored = store_.platform_secret(name);
  if (!stored) {
    store_.platform_insert_secret(name, service_.keks().seal(random_token(64), secret_label(name)));
    stored = store_.platform_secret(name);  // the first replica's, when several start together
  }
  csrf_key_ = service_.keks().open(stored.value(), secret_label(name));
  std::lock_guard lock(keys_mutex_);
  key_fingerprint_ = store_.platform_signing_key_fingerprint();
}

// ---- client authentication
// ---------------------------------------------------------------------------------

std::optional<OAuthService::ClientContext> OAuthService::find_client(std::string_view client_id) {
  if (client_id.size() > 128) return std::nullopt;
  const size_t dot = client_id.find('.');
  if (dot == std::string_view::npos || !looks_like_uuid(client_id.substr(0, dot))) return std::nullopt;
  auto tenant = service_.credential_tenant(client_id.substr(0, dot));
  if (!tenant) return std::nullopt;
  auto c = store_.find_client(tenant->scope, client_id);
  if (!c || c->client_id != client_id) return std::nullopt;
  return ClientContext{std::move(*c), std::move(*tenant)};
}

OAuthService::ClientContext OAuthService::authenticate_client(const Form& form,
                                                              std::string_view authorization) {
  std::optional<std::pair<std::string, std::string>> basic;
  constexpr std::string_view kBasic = "Basic ";
  if (authorization.size() >= kBasic.size() && iequals(authorization.substr(0, kBasic.size()), kBasic)) {
    basic = parse_basic_credentials(authorization);
    if (!basic) throw invalid_client("The HTTP Basic client credentials are malformed.");
  }
  const auto form_id = form.get("client_id");
  const auto form_secret = form.get("client_secret");
  if (basic && form_secret)
    throw invalid_request("Use one client authentication method: HTTP Basic or client_secret in the body.");
  if (basic && form_id && *form_id != basic->first)
    throw invalid_request("client_id in the body differs from the HTTP Basic client id.");
  const std::optional<std::string> id = basic ? std::optional(basic->first) : form_id;
  const std::optional<std::string> secret =
      basic ? (basic->second.empty() ? std::nullopt : std::optional(basic->second)) : form_secret;
  if (!id)
    throw invalid_client("Client authentication is required: HTTP Basic, or client_id (and client_secret).");
  auto cc = find_client(*id);
  if (!cc) throw invalid_client("The client is unknown or its credentials are wrong.");
  if (cc->client.is_public()) {
    if (secret) throw invalid_client("A public client has no secret; send client_id only.");
    return std::move(*cc);
  }
  if (!secret || !cc->client.secret_hash ||
      !constant_time_equal(sha256_hex(*secret), *cc->client.secret_hash))
    throw invalid_client("The client is unknown or its credentials are wrong.");
  return std::move(*cc);
}

// ---- authorization endpoint -------------------------------------------------------------------------------

AuthorizeRequest OAuthService::check_authorize(const Form& p) {
  const auto client_id = p.get("client_id");
  if (!client_id) throw Error(Code::kInvalidRequest, "client_id is required.");
  auto cc = find_client(*client_id);
  if (!cc) throw Error(Code::kInvalidRequest, "The client_id does not name a registered client.");
  AuthorizeRequest req;
  req.client = std::move(cc->client);
  req.tenant = std::move(cc->tenant.info);
  req.scope = std::move(cc->tenant.scope);
  if (auto uri = p.get("redirect_uri")) {
    if (!req.client.has_redirect_uri(*uri))
      throw Error(Code::kInvalidRequest,
                  "The redirect_uri is not one the client registered (exact match required).");
    req.redirect_uri = *uri;
  } else if (req.client.redirect_uris.size() == 1) {
    req.redirect_uri = req.client.redirect_uris.front();
    req.redirect_uri_explicit = false;
  } else {
    throw Error(Code::kInvalidRequest, req.client.redirect_uris.empty()
                                           ? "The client has no redirect_uri registered."
                                           : "redirect_uri is required: the client registered several.");
  }
  // From here on, problems go back to the client at its redirect_uri.
  for (std::string_view name : kAuthorizeParams)
    if (auto v = p.get(name)) req.params.emplace_back(std::string(name), std::move(*v));
  req.state = p.get("state");
  auto fail = [&req](const char* error, std::string description) {
    req.error.emplace(error, std::move(description));
    return req;
  };
  if (req.state && req.state->size() > 1024) {
    req.state.reset();
    return fail("invalid_request", "state is longer than 1024 characters.");
  }
  if (p.get("request")) return fail("request_not_supported", "Request objects are not supported.");
  if (p.get("request_uri")) return fail("request_uri_not_supported", "request_uri is not supported.");
  const auto response_type = p.get("response_type");
  if (!response_type) return fail("invalid_request", "response_type is required.");
  if (*response_type != "code")
    return fail("unsupported_response_type", "Only response_type=code is supported.");
  if (auto mode = p.get("response_mode"); mode && *mode != "query")
    return fail("invalid_request", "Only response_mode=query is supported.");
  if (!req.client.allows_grant("authorization_code"))
    return fail("unauthorized_client", "The client may not use the authorization code grant.");
  if (req.tenant.tenant.status == "suspended")
    return fail("access_denied", "The client's tenant is suspended.");
  const auto challenge = p.get("code_challenge");
  if (!challenge) return fail("invalid_request", "code_challenge is required (PKCE with S256).");
  const auto method = p.get("code_challenge_method");
  if (!method || *method != "S256")
    return fail("invalid_request", "code_challenge_method must be S256; plain is not accepted.");
  if (!valid_code_challenge(*challenge))
    return fail("invalid_request",
                "code_challenge must be 43 base64url characters: BASE64URL(SHA256(verifier)).");
  req.code_challenge = *challenge;
  if (auto s = p.get("scope")) {
    auto scopes = split_scope(*s);
    if (!scopes || scopes->empty()) return fail("invalid_scope", "The scope is malformed.");
    for (const auto& x : *scopes)
      if (!contains(req.client.scopes, x))
        return fail("invalid_scope", "The client may not request the scope '" + x + "'.");
    req.scopes = std::move(*scopes);
  } else {
    req.scopes = req.client.scopes;  // RFC 6749 §3.3: the default is what the client registered
  }
  req.nonce = p.get("nonce");
  if (req.nonce && req.nonce->size() > 512)
    return fail("invalid_request", "nonce is longer than 512 characters.");
  req.prompt = p.get("prompt");
  return req;
}

AuthorizingUser OAuthService::user_from_bearer(const AuthorizeRequest& req, std::string_view token) {
  auto invalid = [](const std::string& why) {
    return Error(Code::kUnauthorized, why)
        .with_header("WWW-Authenticate", "Bearer realm=\"cdx\", error=\"invalid_token\"");
  };
  TokenClaims c;
  try {
    c = service_.keyring()->verify(token, service_.verify_options());
  } catch (const Error& e) {
    throw invalid("The access token is not valid: " + e.detail() + ".");
  }
  if (c.tid.empty() || (c.role != "ADMIN" && c.role != "CLIENT") || c.tid != req.client.tenant_id)
    throw OAuthError("access_denied", "Only a user of the client's tenant can authorize it.");
  auto user = service_.store().find_user(*req.scope, c.sub);
  if (!user || user->status != "active") throw invalid("The access token's user is disabled or deleted.");
  const auto sid = string_claim(c.extra, "sid");
  if (!sid || !store_.session_active(*req.scope, *sid))
    throw invalid("The access token's session has ended.");
  return AuthorizingUser{user->id, user->email, user->name, user->role, c.iat, false};
}

std::string OAuthService::issue_code(const AuthorizeRequest& req, const AuthorizingUser& user,
                                     const Caller& caller) {
  const std::string code = random_token(kCodeLen);
  const int64_t now = Clock::unix_seconds();
  AuthCode c;
  c.id = new_uuid_v7();
  c.tenant_id = req.client.tenant_id;
  c.code_hash = sha256_hex(code);
  c.client_id = req.client.client_id;
  c.user_id = user.id;
  c.redirect_uri = req.redirect_uri;
  c.redirect_uri_explicit = req.redirect_uri_explicit;
  c.code_challenge = req.code_challenge;
  c.scope = join_scope(req.scopes);
  c.nonce = req.nonce;
  c.auth_time = user.auth_time;
  c.expires_at = now + kCodeTtl;
  c.created_at = format_rfc3339(Clock::now());
  store_.insert_code(*req.scope, c, now - kCodeKeepSeconds, user.password_login);
  AuditEvent e{"oauth.authorized", "user", user.id, "oauth_client", req.client.id};
  e.details = {{"client_id", req.client.client_id}, {"scope", c.scope}};
  service_.audit(*req.scope, e, caller);
  std::vector<std::pair<std::string, std::string>> params = {{"code", code}};
  if (req.state) params.emplace_back("state", *req.state);
  params.emplace_back("iss", issuer_);  // RFC 9207
  return add_query(req.redirect_uri, params);
}

std::string OAuthService::error_location(const AuthorizeRequest& req, const OAuthError& e) const {
  std::vector<std::pair<std::string, std::string>> params = {{"error", e.error()},
                                                             {"error_description", e.description()}};
  if (req.state) params.emplace_back("state", *req.state);
  params.emplace_back("iss", issuer_);
  return add_query(req.redirect_uri, params);
}

std::string OAuthService::login_binding(const AuthorizeRequest& req) const {
  std::string out;
  for (const auto& [name, value] : req.params) {
    out += name;
    out += '=';
    out += value;
    out += '\n';  // values hold no control characters (Form), so the encoding is unambiguous
  }
  return out;
}

std::string OAuthService::csrf_token(std::string_view nonce, const AuthorizeRequest& req) const {
  return make_csrf_token(csrf_key_, nonce, login_binding(req), Clock::unix_seconds() + kLoginFormTtl);
}

bool OAuthService::csrf_valid(std::string_view token, std::string_view nonce,
                              const AuthorizeRequest& req) const {
  return check_csrf_token(csrf_key_, token, nonce, login_binding(req), Clock::unix_seconds());
}

// ---- token endpoint
// ----------------------------------------------------------------------------------------

std::string OAuthService::sign_user_access(const ClientContext& cc, const User& user,
                                           const std::string& scope, const std::string& family_id,
                                           int64_t ttl) const {
  TokenClaims c;
  c.iss = issuer_;
  c.sub = user.id;
  c.aud = kAudience;
  c.tid = cc.client.tenant_id;
  c.role = user.role;
  c.scope = scope;
  c.iat = Clock::unix_seconds();
  c.exp = c.iat + ttl;
  c.extra = {{"sid", family_id}, {"email", user.email}, {"client_id", cc.client.client_id}};
  return service_.keyring()->sign(c);
}

std::string OAuthService::sign_id_token(const ClientContext& cc, const User& user,
                                        const std::vector<std::string>& scopes,
                                        const std::optional<std::string>& nonce, int64_t auth_time,
                                        const std::string& access_token, int64_t ttl) const {
  const int64_t now = Clock::unix_seconds();
  json p = {{"iss", issuer_},
            {"sub", user.id},
            {"aud", cc.client.client_id},
            {"azp", cc.client.client_id},
            {"iat", now},
            {"exp", now + ttl},
            {"auth_time", auth_time},
            {"tid", cc.client.tenant_id},
            {"at_hash", at_hash(access_token)}};
  if (nonce) p["nonce"] = *nonce;
  if (contains(scopes, "email")) {
    p["email"] = user.email;
    p["email_verified"] = false;
  }
  if (contains(scopes, "profile")) {
    p["name"] = user.name;
    p["preferred_username"] = user.email;
  }
  return service_.keyring()->sign_json(p);
}

nlohmann::json OAuthService::token(const Form& form, std::string_view authorization, const Caller& caller,
                                   std::vector<std::string>* origins) {
  const auto grant = form.get("grant_type");
  if (!grant) throw invalid_request("grant_type is required.");
  if (!contains(grant_types(), *grant))
    throw OAuthError("unsupported_grant_type",
                     "Supported grant types: authorization_code, refresh_token, client_credentials.");
  ClientContext cc = authenticate_client(form, authorization);
  if (origins) *origins = cc.client.allowed_origins;
  if (!cc.client.allows_grant(*grant))
    throw unauthorized_client("The client may not use the " + *grant + " grant.");
  if (cc.tenant.info.tenant.status == "suspended")
    throw unauthorized_client("The client's tenant is suspended.");
  if (*grant == "authorization_code") return grant_authorization_code(form, cc, caller);
  if (*grant == "refresh_token") return grant_refresh_token(form, cc, caller);
  return grant_client_credentials(form, cc);
}

nlohmann::json OAuthService::grant_authorization_code(const Form& form, const ClientContext& cc,
                                                      const Caller& caller) {
  const auto code = form.get("code");
  if (!code) throw invalid_request("code is required.");
  const auto verifier = form.get("code_verifier");
  if (!verifier) throw invalid_request("code_verifier is required (PKCE).");
  if (!valid_code_verifier(*verifier))
    throw invalid_request("code_verifier must be 43 to 128 of [A-Za-z0-9-._~].");
  const db::TenantScope& scope = cc.tenant.scope;
  const int64_t now = Clock::unix_seconds();
  const auto row = code->size() == kCodeLen ? store_.find_code(scope, sha256_hex(*code)) : std::nullopt;
  if (!row) throw invalid_grant("The authorization code is not valid.");
  auto replayed = [&] {
    const int64_t revoked = store_.revoke_code_family(scope, row->id);
    AuditEvent e{"oauth.code_reused", "client", cc.client.client_id, "user", row->user_id};
    e.details = {{"client_id", cc.client.client_id}, {"tokens_revoked", revoked}};
    service_.audit(scope, e, caller);
    log::warn("authorization code reused: its tokens are revoked", {{"client_id", cc.client.client_id}});
    return invalid_grant("The authorization code was already used; the tokens issued from it are revoked.")
        .revoking();
  };
  if (row->used_at) throw replayed();
  if (row->expires_at <= now) throw invalid_grant("The authorization code has expired.");
  if (row->client_id != cc.client.client_id)
    throw invalid_grant("The authorization code was issued to another client.");
  const auto redirect_uri = form.get("redirect_uri");
  if ((row->redirect_uri_explicit && !redirect_uri) || (redirect_uri && *redirect_uri != row->redirect_uri))
    throw invalid_grant("redirect_uri must be the one of the authorization request.");
  if (!cc.client.has_redirect_uri(row->redirect_uri))
    throw invalid_grant("The redirect_uri is no longer registered for the client.");
  if (!pkce_matches(*verifier, row->code_challenge))
    throw invalid_grant("The code_verifier does not match the code_challenge.");
  const auto user = service_.store().find_user(scope, row->user_id);
  if (!user || user->status != "active") throw invalid_grant("The user who authorized the code is disabled.");

  const auto life = service_.lifetimes(&cc.tenant.info);
  const bool with_refresh = cc.client.allows_grant("refresh_token");
  // The session family always gets a first refresh token row, so revoking the family (code replay, logout,
  // introspection) works whether or not the client may refresh; its value is only handed out when it may.
  const std::string refresh = cc.client.tenant_id + "." + random_token(kRefreshSecretLen);
  RefreshToken t;
  t.id = new_uuid_v7();
  t.tenant_id = cc.client.tenant_id;
  t.family_id = new_uuid_v7();
  t.subject_id = user->id;
  t.subject_type = "user";
  t.token_hash = sha256_hex(refresh);
  t.client_id = cc.client.client_id;
  t.scope = row->scope;
  t.expires_at = now + life.refresh;
  t.created_at = format_rfc3339(Clock::now());
  if (!store_.redeem_code(scope, *row, t, now)) throw replayed();

  const auto scopes = split_scope(row->scope).value_or(std::vector<std::string>{});
  const std::string access = sign_user_access(cc, *user, row->scope, t.family_id, life.access);
  json out = {
      {"access_token", access}, {"token_type", "Bearer"}, {"expires_in", life.access}, {"scope", row->scope}};
  if (with_refresh) out["refresh_token"] = refresh;
  if (contains(scopes, "openid"))
    out["id_token"] = sign_id_token(cc, *user, scopes, row->nonce, row->auth_time, access, life.access);
  return out;
}

nlohmann::json OAuthService::grant_refresh_token(const Form& form, const ClientContext& cc,
                                                 const Caller& caller) {
  const auto presented = form.get("refresh_token");
  if (!presented) throw invalid_request("refresh_token is required.");
  const std::string prefix = cc.client.tenant_id + ".";
  if (presented->size() != prefix.size() + kRefreshSecretLen ||
      presented->compare(0, prefix.size(), prefix) != 0)
    throw invalid_grant("The refresh token is not valid.");
  const db::TenantScope& scope = cc.tenant.scope;
  Store& store = service_.store();
  const std::string hash = sha256_hex(*presented);
  const auto row = store.find_refresh_token(scope, hash);
  // Bound to its client: another client presenting it learns nothing and spends nothing.
  if (!row || row->client_id != cc.client.client_id) throw invalid_grant("The refresh token is not valid.");
  // What the token was granted, less what the client may no longer ask for (its scopes were narrowed).
  std::vector<std::string> granted;
  for (const auto& s : split_scope(row->scope).value_or(std::vector<std::string>{}))
    if (contains(cc.client.scopes, s)) granted.push_back(s);
  std::string scope_text = join_scope(granted);
  if (auto requested = form.get("scope")) {
    auto asked = split_scope(*requested);
    if (!asked || asked->empty()) throw invalid_scope("The scope is malformed.");
    for (const auto& s : *asked)
      if (!contains(granted, s))
        throw invalid_scope("The scope '" + s + "' was not granted to this refresh token.");
    scope_text = join_scope(*asked);
  }
  const auto life = service_.lifetimes(&cc.tenant.info);
  const std::string next = cc.client.tenant_id + "." + random_token(kRefreshSecretLen);
  RefreshToken replacement;
  replacement.id = new_uuid_v7();
  replacement.tenant_id = cc.client.tenant_id;
  replacement.token_hash = sha256_hex(next);
  replacement.expires_at = Clock::unix_seconds() + life.refresh;
  replacement.created_at = format_rfc3339(Clock::now());
  RefreshToken spent;
  const RotateOutcome outcome =
      store.rotate_refresh_token(scope, hash, replacement, Clock::unix_seconds(), spent);
  if (outcome == RotateOutcome::kReused) {
    log::warn("refresh token reused: session family revoked", {{"family_id", spent.family_id}});
    AuditEvent e{"session.family_revoked", "client", cc.client.client_id, "user", spent.subject_id};
    e.details = {{"family_id", spent.family_id},
                 {"reason", "refresh token reuse"},
                 {"client_id", cc.client.client_id}};
    service_.audit(scope, e, caller);
  }
  if (outcome == RotateOutcome::kReused) throw invalid_grant("The refresh token is not valid.").revoking();
  if (outcome != RotateOutcome::kRotated) throw invalid_grant("The refresh token is not valid.");
  const auto user = store.find_user(scope, spent.subject_id);
  if (!user || user->status != "active") {
    store.revoke_refresh_family(scope, spent.family_id);
    throw invalid_grant("The refresh token's user is disabled or deleted.").revoking();
  }
  json out = {{"access_token", sign_user_access(cc, *user, scope_text, spent.family_id, life.access)},
              {"token_type", "Bearer"},
              {"expires_in", life.access},
              {"refresh_token", next},
              {"scope", scope_text}};
  return out;
}

nlohmann::json OAuthService::grant_client_credentials(const Form& form, const ClientContext& cc) {
  if (cc.client.is_public()) throw unauthorized_client("A public client cannot use client_credentials.");
  std::vector<std::string> allowed;
  for (const auto& s : cc.client.scopes)
    if (!contains(oidc_scopes(), s)) allowed.push_back(s);
  std::vector<std::string> scopes = allowed;
  if (auto requested = form.get("scope")) {
    auto asked = split_scope(*requested);
    if (!asked || asked->empty()) throw invalid_scope("The scope is malformed.");
    for (const auto& s : *asked)
      if (!contains(allowed, s))
        throw invalid_scope("The client may not request the scope '" + s + "' here.");
    scopes = std::move(*asked);
  }
  const auto life = service_.lifetimes(&cc.tenant.info);
  // The client itself, not a user: no role, so the CDX API's user routes refuse it; the tenant's own resource
  // servers check it through the JWKS or /oauth/introspect.
  TokenClaims c;
  c.iss = issuer_;
  c.sub = cc.client.client_id;
  c.aud = kAudience;
  c.tid = cc.client.tenant_id;
  c.scope = join_scope(scopes);
  c.iat = Clock::unix_seconds();
  c.exp = c.iat + life.access;
  c.extra = {{"client_id", cc.client.client_id}};
  return {{"access_token", service_.keyring()->sign(c)},
          {"token_type", "Bearer"},
          {"expires_in", life.access},
          {"scope", c.scope}};
}

// ---- revocation, introspection, userinfo
// -------------------------------------------------------------------

bool OAuthService::revoke(const Form& form, std::string_view authorization, const Caller& caller,
                          std::vector<std::string>* origins) {
  ClientContext cc = authenticate_client(form, authorization);
  if (origins) *origins = cc.client.allowed_origins;
  const auto token = form.get("token");
  if (!token) throw invalid_request("token is required.");
  const db::TenantScope& scope = cc.tenant.scope;
  std::optional<std::string> family;
  std::string subject;
  if (looks_like_jwt(*token)) {
    // An access token ends with its session (the refresh family it belongs to).
    try {
      const TokenClaims c = service_.keyring()->verify(*token, service_.verify_options());
      if (c.tid == cc.client.tenant_id && string_claim(c.extra, "client_id") == cc.client.client_id) {
        family = string_claim(c.extra, "sid");
        subject = c.sub;
      }
    } catch (const Error&) {
      // RFC 7009 §2.2: an invalid token is answered like a revoked one.
    }
  } else {
    const std::string prefix = cc.client.tenant_id + ".";
    if (token->size() == prefix.size() + kRefreshSecretLen && token->compare(0, prefix.size(), prefix) == 0) {
      auto row = service_.store().find_refresh_token(scope, sha256_hex(*token));
      if (row && row->client_id == cc.client.client_id) {
        family = row->family_id;
        subject = row->subject_id;
      }
    }
  }
  if (!family) return false;
  if (service_.store().revoke_refresh_family(scope, *family) > 0) {
    AuditEvent e{"oauth.token_revoked", "client", cc.client.client_id, "user", subject};
    e.details = {{"client_id", cc.client.client_id}, {"family_id", *family}};
    service_.audit(scope, e, caller);
    return true;
  }
  return false;
}

nlohmann::json OAuthService::introspect(const Form& form, std::string_view authorization) {
  ClientContext cc = authenticate_client(form, authorization);
  if (cc.client.is_public()) throw invalid_client("Introspection needs a confidential client's credentials.");
  const auto token = form.get("token");
  if (!token) throw invalid_request("token is required.");
  const json inactive = {{"active", false}};
  const db::TenantScope& scope = cc.tenant.scope;
  Store& store = service_.store();
  if (looks_like_jwt(*token)) {
    TokenClaims c;
    try {
      c = service_.keyring()->verify(*token, service_.verify_options());
    } catch (const Error&) {
      return inactive;
    }
    if (c.tid.empty() || c.tid != cc.client.tenant_id)
      return inactive;  // other tenants' tokens are not ours to tell
    const auto client_claim = string_claim(c.extra, "client_id");
    std::optional<std::string> username;
    if (!c.role.empty()) {
      const auto user = store.find_user(scope, c.sub);
      if (!user || user->status != "active") return inactive;
      username = user->email;
      if (!string_claim(c.extra, "sid")) return inactive;  // every user token belongs to a session
    } else {
      // A client's own token (client_credentials) lives as long as its client.
      if (!client_claim) return inactive;
      const auto owner = store_.find_client(scope, *client_claim);
      if (!owner || owner->client_id != *client_claim) return inactive;
    }
    if (const auto sid = string_claim(c.extra, "sid"); sid && !store_.session_active(scope, *sid))
      return inactive;
    json out = {{"active", true}, {"token_type", "Bearer"}, {"sub", c.sub}, {"tid", c.tid},
                {"iss", c.iss},   {"aud", c.aud},           {"exp", c.exp}, {"iat", c.iat}};
    if (!c.scope.empty()) out["scope"] = c.scope;
    if (!c.jti.empty()) out["jti"] = c.jti;
    if (client_claim) out["client_id"] = *client_claim;
    if (username) out["username"] = *username;
    if (!c.role.empty()) out["role"] = c.role;
    return out;
  }
  const std::string prefix = cc.client.tenant_id + ".";
  const size_t secret_len = token->size() - std::min(token->size(), prefix.size());
  if (token->compare(0, prefix.size(), prefix) != 0 ||
      (secret_len != kRefreshSecretLen && secret_len != kFirstPartyRefreshSecretLen))
    return inactive;
  const auto row = store.find_refresh_token(scope, sha256_hex(*token));
  if (!row || row->used_at || row->revoked_at || row->expires_at <= Clock::unix_seconds()) return inactive;
  const auto user = store.find_user(scope, row->subject_id);
  if (!user || user->status != "active") return inactive;
  json out = {
      {"active", true}, {"token_type", "refresh_token"}, {"sub", row->subject_id}, {"tid", row->tenant_id},
      {"iss", issuer_}, {"exp", row->expires_at},        {"username", user->email}};
  if (!row->scope.empty()) out["scope"] = row->scope;
  if (auto created = parse_rfc3339(row->created_at))
    out["iat"] = std::chrono::duration_cast<std::chrono::seconds>(created->time_since_epoch()).count();
  if (row->client_id) out["client_id"] = *row->client_id;
  return out;
}

nlohmann::json OAuthService::userinfo(std::string_view access_token, std::vector<std::string>* origins) {
  TokenClaims c;
  try {
    c = service_.keyring()->verify(access_token, service_.verify_options());
  } catch (const Error& e) {
    throw invalid_token("The access token is not valid: " + e.detail() + ".");
  }
  if (c.tid.empty() || (c.role != "ADMIN" && c.role != "CLIENT"))
    throw invalid_token("The access token does not belong to a user.");
  const auto client_claim = string_claim(c.extra, "client_id");
  if (client_claim && !contains(split_scope(c.scope).value_or(std::vector<std::string>{}), "openid"))
    throw OAuthError("insufficient_scope", "The access token was not granted the openid scope.", 403)
        .challenge("Bearer realm=\"cdx\", error=\"insufficient_scope\", scope=\"openid\"");
  const auto tenant = service_.credential_tenant(c.tid);
  if (!tenant) throw invalid_token("The access token's tenant no longer exists.");
  const auto user = service_.store().find_user(tenant->scope, c.sub);
  if (!user || user->status != "active")
    throw invalid_token("The access token's user is disabled or deleted.");
  const auto sid = string_claim(c.extra, "sid");
  if (!sid || !store_.session_active(tenant->scope, *sid))
    throw invalid_token("The access token's session has ended.");
  if (client_claim && origins)  // a browser app reads its user's claims from the origins it registered
    if (auto client = store_.find_client(tenant->scope, *client_claim);
        client && client->client_id == *client_claim)
      *origins = client->allowed_origins;
  // OIDC Core §5.4: email claims with the email scope, profile claims with profile. A first-party
  // token (no client) is the user's own session and sees both.
  const auto granted = split_scope(c.scope).value_or(std::vector<std::string>{});
  nlohmann::json out = {{"sub", user->id}, {"tenant_id", c.tid}, {"tid", c.tid}};
  if (!client_claim || contains(granted, "email")) {
    out["email"] = user->email;
    out["email_verified"] = false;
  }
  if (!client_claim || contains(granted, "profile")) {
    out["name"] = user->name;
    out["preferred_username"] = user->email;
  }
  return out;
}

// ---- signing keys
// ------------------------------------------------------------------------------------------

std::string OAuthService::rotate_signing_key() {
  SigningKey k = generate_signing_key(Clock::unix_seconds());
  service_.store().platform_insert_signing_key(k,
                                               service_.keks().seal(k.private_pem, "signing_key:" + k.kid));
  sodium_memzero(k.private_pem.data(), k.private_pem.size());
  log::info("token signing key rotated", {{"kid", k.kid}, {"alg", k.alg}});
  return k.kid;
}

std::vector<std::string> OAuthService::retire_signing_keys(int64_t inactive_for) {
  auto retired = store_.platform_retire_signing_keys(Clock::unix_seconds(), inactive_for);
  for (const auto& kid : retired) log::info("token signing key retired", {{"kid", kid}});
  return retired;
}

bool OAuthService::signing_keys_changed() {
  std::string now = store_.platform_signing_key_fingerprint();
  std::lock_guard lock(keys_mutex_);
  if (now == key_fingerprint_) return false;
  key_fingerprint_ = std::move(now);
  return true;
}

}  // namespace cdx::auth
