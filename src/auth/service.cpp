#include "auth/service.hpp"

#include "auth/scope_minter.hpp"
#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/password.hpp"
#include "common/validate.hpp"

namespace cdx::auth {

namespace {
Error invalid_credentials() {
  return Error(Code::kUnauthorized, "The credentials are not valid.")
      .with_header("WWW-Authenticate", "Bearer realm=\"cdx\"");
}
}  // namespace

void Service::load_signing_keys() {
  auto keys = store_.platform_signing_keys();
  if (keys.empty()) {
    SigningKey k = generate_signing_key(Clock::unix_seconds());
    store_.platform_insert_signing_key(k);
    log::info("generated a new token signing key", {{"kid", k.kid}, {"alg", k.alg}});
    keys = store_.platform_signing_keys();
  }
  auto ring = std::make_shared<const KeyRing>(keys);
  std::lock_guard lock(keyring_mutex_);
  keyring_ = std::move(ring);
}

std::shared_ptr<const KeyRing> Service::keyring() const {
  std::lock_guard lock(keyring_mutex_);
  return keyring_;
}

VerifyOptions Service::verify_options() const {
  return VerifyOptions{issuer_, std::string(kAudience), Clock::unix_seconds(), 30};
}

nlohmann::json Service::token_answer(const TokenClaims& claims) {
  const std::string token = keyring()->sign(claims);
  nlohmann::json out = {{"access_token", token},
                        {"token_type", "Bearer"},
                        {"expires_in", claims.exp - claims.iat}};
  if (!claims.scope.empty()) out["scope"] = claims.scope;
  return out;
}

nlohmann::json Service::superadmin_login(std::string_view username, std::string_view password) {
  auto who = core_.verify_superadmin(username, password);
  if (!who) {
    log::info("superadmin login failed", {{"username", username}});
    throw invalid_credentials();
  }
  TokenClaims c;
  c.iss = issuer_;
  c.sub = who->id;
  c.aud = kAudience;
  c.role = "SUPERADMIN";
  c.scope = "*";
  c.iat = Clock::unix_seconds();
  c.exp = c.iat + config_.access_token_ttl;
  c.extra = {{"username", who->username}};
  log::info("superadmin login", {{"superadmin_id", who->id}});
  return token_answer(c);
}

nlohmann::json Service::login(std::string_view tenant, std::string_view email, std::string_view password) {
  auto info = core_.find_tenant(tenant);
  if (!info) {
    verify_dummy_password(password);
    throw invalid_credentials();
  }
  const db::TenantScope scope = ScopeMinter::mint(info->tenant.id);
  auto user = store_.find_user_by_email(scope, email);
  if (!user) {
    verify_dummy_password(password);
    throw invalid_credentials();
  }
  if (!verify_password(user->password_hash, password) || user->status != "active") throw invalid_credentials();
  if (info->tenant.status == "suspended")
    throw Error(Code::kTenantSuspended, "The tenant '" + info->tenant.slug + "' is suspended.");
  store_.touch_user_login(scope, user->id);
  TokenClaims c;
  c.iss = issuer_;
  c.sub = user->id;
  c.aud = kAudience;
  c.tid = info->tenant.id;
  c.role = user->role;
  c.iat = Clock::unix_seconds();
  c.exp = c.iat + config_.access_token_ttl;
  c.extra = {{"email", user->email}};
  return token_answer(c);
}

User Service::create_user(const db::TenantScope& scope, const std::string& email, const std::string& name,
                         const std::string& role, const std::string& password) {
  User u;
  u.id = new_uuid_v7();
  u.tenant_id = scope.tenant_id();
  u.email = email;
  u.name = name.empty() ? email.substr(0, email.find('@')) : name;
  u.role = role;
  u.status = "active";
  u.password_hash = hash_password(password);
  u.created_at = u.updated_at = format_rfc3339(Clock::now());
  try {
    store_.insert_user(scope, u);
  } catch (const db::UniqueViolation&) {
    throw Error(Code::kConflict, "A user with the email '" + email + "' already exists in this tenant.");
  }
  return u;
}

FirstAdmin Service::create_first_admin(const db::TenantScope& scope, const std::string& email,
                                       const std::optional<std::string>& password) {
  const std::string initial = password ? *password : random_token(20);
  User u = create_user(scope, email, "", "ADMIN", initial);
  FirstAdmin out;
  out.admin = to_json(u);
  if (!password) out.admin["initial_password"] = initial;
  NewApiKey k;
  k.name = "Default secret key";
  k.created_by = u.id;
  out.api_key = create_api_key(scope, k)["key"].get<std::string>();
  return out;
}

nlohmann::json Service::create_api_key(const db::TenantScope& scope, const NewApiKey& in) {
  std::vector<FieldError> errors;
  if (in.type != "secret" && in.type != "publishable") errors.push_back({"type", "must be 'secret' or 'publishable'"});
  const auto& allowed = in.type == "publishable" ? publishable_scopes() : secret_scopes();
  std::vector<std::string> scopes = in.scopes.value_or(
      in.type == "publishable" ? publishable_scopes() : std::vector<std::string>{"*"});
  for (const auto& s : scopes)
    if (std::find(allowed.begin(), allowed.end(), s) == allowed.end())
      errors.push_back({"scopes", "'" + s + "' is not a scope a " + in.type + " key may hold"});
  if (in.caller_scopes) {
    const auto& held = *in.caller_scopes;
    const bool all = std::find(held.begin(), held.end(), "*") != held.end();
    for (const auto& s : scopes)
      if (!all && std::find(held.begin(), held.end(), s) == held.end())
        throw Error(Code::kForbidden, "The calling key does not hold the scope '" + s + "' it tries to grant.");
  }
  if (in.expires_at && *in.expires_at <= Clock::unix_seconds())
    errors.push_back({"expires_at", "must be in the future"});
  if (!errors.empty()) throw Error::validation(std::move(errors));

  const std::string type_prefix = in.type == "secret" ? "cdx_sk_" : "cdx_pk_";
  const std::string full = type_prefix + random_token(kKeyLen - kKeyTypeLen);
  ApiKey k;
  k.id = new_uuid_v7();
  k.tenant_id = scope.tenant_id();
  k.name = in.name;
  k.type = in.type;
  k.prefix = full.substr(0, kKeyPrefixLen);
  k.key_hash = sha256_hex(full);
  k.scopes = scopes;
  k.created_by = in.created_by;
  k.expires_at = in.expires_at;
  k.created_at = format_rfc3339(Clock::now());
  store_.insert_api_key(scope, k);
  nlohmann::json out = to_json(k);
  out["key"] = full;
  return out;
}

std::optional<ResolvedKey> Service::resolve_api_key(std::string_view prefix) {
  auto tenant_id = store_.platform_tenant_of_key_prefix(prefix);
  if (!tenant_id) return std::nullopt;
  auto key = store_.find_api_key_by_prefix(ScopeMinter::mint(*tenant_id), prefix);
  if (!key || key->revoked_at) return std::nullopt;
  auto tenant = core_.find_tenant(*tenant_id);
  if (!tenant) return std::nullopt;
  return ResolvedKey{std::move(*key), std::move(*tenant)};
}

}  // namespace cdx::auth
