#include "auth/service.hpp"

#include <sodium.h>

#include <future>

#include <fmt/format.h>

#include "auth/scope_minter.hpp"
#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/password.hpp"
#include "common/validate.hpp"

namespace cdx::auth {

namespace {

constexpr int64_t kResetTtl = 3600;

Error invalid_credentials() {
  return Error(Code::kUnauthorized, "The credentials are not valid.")
      .with_header("WWW-Authenticate", "Bearer realm=\"cdx\"");
}

Error invalid_refresh() { return Error(Code::kUnauthorized, "The refresh token is not valid."); }

// Opaque tokens name their tenant in front so they can be looked up under that tenant's scope:
// "<tenant id or 'platform'>.<secret>". The secret alone carries the ~256 bits of entropy.
std::string make_opaque_token(std::string_view tenant) {
  return std::string(tenant) + "." + random_token(43);
}

std::optional<std::pair<std::string, std::string>> split_opaque_token(std::string_view token) {
  const size_t dot = token.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot > 64 || token.size() - dot - 1 != 43)
    return std::nullopt;
  return std::pair{std::string(token.substr(0, dot)), std::string(token)};
}

int64_t setting_int(const nlohmann::json& settings, const char* key, int64_t fallback, int64_t min,
                    int64_t max) {
  auto it = settings.find(key);
  if (it == settings.end() || !it->is_number_integer()) return fallback;
  return std::clamp<int64_t>(it->get<int64_t>(), min, max);
}

std::string actor_type(const Caller& c) {
  if (!c.principal) return "anonymous";
  switch (c.principal->kind) {
    case Principal::Kind::kSuperadmin:
      return "superadmin";
    case Principal::Kind::kApiKey:
      return "api_key";
    case Principal::Kind::kUser:
      return "user";
  }
  return "anonymous";
}

}  // namespace

Service::Service(Store& store, core::Api& core, const Config& config, WorkerPool& hashers)
    : store_(store),
      core_(core),
      config_(config),
      hashers_(hashers),
      mailer_(make_mailer(config.smtp_url, config.smtp_from)),
      issuer_(config.issuer()) {}

// Argon2id is CPU-bound: it runs on the hashing pool (sized to the cores) while this worker waits, so
// sign-ups, resets and user changes share the bounded hashing capacity with logins.
template <class F>
auto Service::on_hashers(F fn) -> decltype(fn()) {
  using R = decltype(fn());
  auto done = std::make_shared<std::promise<R>>();
  hashers_.post([done, fn = std::move(fn)]() mutable {
    try {
      done->set_value(fn());
    } catch (...) {
      done->set_exception(std::current_exception());
    }
  });
  return done->get_future().get();
}

std::string Service::hash_on_pool(std::string_view password) {
  return on_hashers([pw = std::string(password)] { return hash_password(pw); });
}

void Service::check_own_password(const db::TenantScope& scope, const std::string& user_id,
                                 std::string_view password, const std::string& ip) {
  const std::string account = scope.tenant_id() + ":" + user_id + ":current";
  const int64_t now = Clock::unix_seconds();
  if (auto wait = throttle_.retry_after(account, ip, now))
    throw Error(Code::kRateLimited, "Too many wrong passwords; retry later.")
        .with_header("Retry-After", std::to_string(*wait));
  auto user = store_.find_user(scope, user_id);
  const bool right =
      on_hashers([hash = user ? user->password_hash : std::string(), pw = std::string(password)] {
        return !hash.empty() && verify_password(hash, pw);
      });
  if (!right) {
    throttle_.failed(account, ip, now);
    throw Error::validation({{"current_password", "is not your current password"}});
  }
}

// ---- keys -------------------------------------------------------------------------------------------

const KeyEncryption& Service::keks() {
  std::lock_guard lock(keks_mutex_);
  if (!keks_) {
    keks_ = std::make_unique<const KeyEncryption>(KeyEncryption::load(config_));
    log::info("key encryption key loaded", {{"kek_id", keks_->id()}});
  }
  return *keks_;
}

namespace {
std::string signing_key_label(const std::string& kid) { return "signing_key:" + kid; }
}  // namespace

std::string Service::open_signing_key(const Store::StoredKey& k) {
  if (k.sealed.kek_id.empty()) return k.sealed.text;  // plain text of an earlier version
  return keks().open(k.sealed, signing_key_label(k.key.kid));
}

size_t Service::seal_signing_keys() {
  const KeyEncryption& kek = keks();
  struct Pending {
    const Store::StoredKey* stored;
    std::string pem;
  };
  const auto keys = store_.platform_signing_keys(true);
  std::vector<Pending> pending;
  size_t plain = 0;
  for (const auto& k : keys) {
    if (k.sealed.kek_id == kek.id()) continue;
    pending.push_back({&k, open_signing_key(k)});  // throws before anything changed
    plain += k.sealed.kek_id.empty() ? 1 : 0;
  }
  size_t sealed = 0;
  for (auto& p : pending) {
    if (store_.platform_reseal_signing_key(p.stored->key.kid, p.stored->sealed,
                                           kek.seal(p.pem, signing_key_label(p.stored->key.kid))))
      ++sealed;
    sodium_memzero(p.pem.data(), p.pem.size());
  }
  if (sealed == 0) return 0;
  // What the rows held before (plain text, or the old KEK's ciphertext) must not stay in free pages.
  store_.database().scrub();
  log::info("token signing keys sealed with the key encryption key",
            {{"kek_id", kek.id()}, {"sealed", sealed}, {"from_plain_text", plain}});
  if (plain > 0)
    log::warn(
        "token signing keys stored in plain text by an earlier version are sealed now; backups made "
        "before still hold them: rotate the signing keys (cdx admin rotate-keys) and retire the old ones",
        {{"keys", plain}});
  return sealed;
}

void Service::load_signing_keys() {
  const KeyEncryption& kek = keks();
  seal_signing_keys();
  auto stored = store_.platform_signing_keys();
  if (stored.empty()) {
    SigningKey k = generate_signing_key(Clock::unix_seconds());
    store_.platform_insert_signing_key(k, kek.seal(k.private_pem, signing_key_label(k.kid)));
    sodium_memzero(k.private_pem.data(), k.private_pem.size());
    log::info("generated a new token signing key", {{"kid", k.kid}, {"alg", k.alg}});
    stored = store_.platform_signing_keys();
  }
  std::vector<SigningKey> keys;
  for (const auto& s : stored) {
    keys.push_back(s.key);
    keys.back().private_pem = open_signing_key(s);
  }
  auto ring = std::make_shared<const KeyRing>(keys);
  for (auto& k : keys) sodium_memzero(k.private_pem.data(), k.private_pem.size());
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

// ---- sessions ---------------------------------------------------------------------------------------

Service::Lifetimes Service::lifetimes(const core::TenantInfo* tenant) const {
  Lifetimes life{config_.access_token_ttl, config_.refresh_token_ttl};
  if (tenant) {
    // A tenant may shorten its lifetimes, never stretch them past the platform's bounds.
    life.access =
        setting_int(tenant->tenant.settings, "access_token_ttl", life.access, 60, config_.access_token_ttl);
    life.refresh = setting_int(tenant->tenant.settings, "refresh_token_ttl", life.refresh, 300,
                               config_.refresh_token_ttl);
  }
  return life;
}

std::string Service::sign_access(const Subject& s, const std::string& session_id, int64_t ttl) {
  TokenClaims c;
  c.iss = issuer_;
  c.sub = s.id;
  c.aud = kAudience;
  c.tid = s.tenant_id;
  c.role = s.role;
  c.scope = s.scope;
  c.iat = Clock::unix_seconds();
  c.exp = c.iat + ttl;
  c.extra = {{"sid", session_id}};
  c.extra[s.tenant_id.empty() ? "username" : "email"] = s.name;
  return keyring()->sign(c);
}

nlohmann::json Service::open_session(const Subject& s, const Lifetimes& life,
                                     const std::optional<std::string>& client_id, const AuditEvent* login) {
  const std::string tenant_key = s.tenant_id.empty() ? std::string(kPlatformTenant) : s.tenant_id;
  const std::string refresh = make_opaque_token(tenant_key);
  RefreshToken t;
  t.id = new_uuid_v7();
  t.tenant_id = tenant_key;
  t.family_id = new_uuid_v7();
  t.subject_id = s.id;
  t.subject_type = s.tenant_id.empty() ? "superadmin" : "user";
  t.token_hash = sha256_hex(refresh);
  t.client_id = client_id;
  t.scope = s.scope;
  t.expires_at = Clock::unix_seconds() + life.refresh;
  t.created_at = format_rfc3339(Clock::now());
  // One transaction (one fsync on SQLite) per login: session, last_login_at and the audit row.
  store_.insert_session(ScopeMinter::mint(tenant_key), t, login);
  nlohmann::json out = {{"access_token", sign_access(s, t.family_id, life.access)},
                        {"token_type", "Bearer"},
                        {"expires_in", life.access},
                        {"refresh_token", refresh}};
  if (!s.scope.empty()) out["scope"] = s.scope;
  return out;
}

nlohmann::json Service::superadmin_login(std::string_view username, std::string_view password,
                                         const Caller& caller) {
  const std::string account = "superadmin:" + std::string(username);
  const int64_t now = Clock::unix_seconds();
  if (auto wait = throttle_.retry_after(account, caller.ip, now))
    throw Error(Code::kRateLimited, "Too many failed logins; try again later.")
        .with_header("Retry-After", std::to_string(*wait));
  auto who = core_.verify_superadmin(username, password);
  if (!who) {
    throttle_.failed(account, caller.ip, now);
    log::warn("superadmin login failed", {{"username", username}, {"ip", caller.ip}});
    throw invalid_credentials();
  }
  throttle_.succeeded(account);
  log::info("superadmin login", {{"superadmin_id", who->id}, {"ip", caller.ip}});
  return open_session({who->id, "SUPERADMIN", "", who->username, "*"}, lifetimes(nullptr), std::nullopt);
}

Service::LoginAttempt Service::begin_login(std::string_view tenant, std::string_view email,
                                           const Caller& caller) {
  LoginAttempt a;
  a.tenant = core_.find_tenant(tenant);
  // The account is (tenant id, lower-cased email), however the caller spells the tenant or the email.
  a.account = (a.tenant ? a.tenant->tenant.id : "?" + lowercase(tenant)) + ":" + lowercase(email);
  if (auto wait = throttle_.retry_after(a.account, caller.ip, Clock::unix_seconds()))
    throw Error(Code::kRateLimited, "Too many failed logins; try again later.")
        .with_header("Retry-After", std::to_string(*wait));
  if (a.tenant) a.user = store_.find_user_by_email(ScopeMinter::mint(a.tenant->tenant.id), email);
  return a;
}

bool Service::check_password(const LoginAttempt& a, std::string_view password) {
  // Unknown tenant or user costs one verification too, so timing does not tell them apart.
  if (!a.user) {
    verify_dummy_password(password);
    return false;
  }
  return verify_password(a.user->password_hash, password);
}

nlohmann::json Service::finish_login(const LoginAttempt& a, bool password_ok, const Caller& caller) {
  accept_login(a, password_ok, caller);
  AuditEvent e{"login.succeeded", "user", a.user->id, "user", a.user->id};
  e.ip = caller.ip;
  return open_session({a.user->id, a.user->role, a.tenant->tenant.id, a.user->email, ""},
                      lifetimes(&*a.tenant), std::nullopt, &e);
}

User Service::finish_client_login(const LoginAttempt& a, bool password_ok, const Caller& caller,
                                  const std::string& client_id) {
  accept_login(a, password_ok, caller);
  AuditEvent e{"login.succeeded", "user", a.user->id, "user", a.user->id};
  e.details = {{"client_id", client_id}};
  audit(ScopeMinter::mint(a.tenant->tenant.id), e, caller);
  return *a.user;
}

void Service::accept_login(const LoginAttempt& a, bool password_ok, const Caller& caller) {
  const int64_t now = Clock::unix_seconds();
  auto fail = [&](const std::string& reason) {
    throttle_.failed(a.account, caller.ip, now);
    if (a.tenant) {
      AuditEvent e{"login.failed", "anonymous"};
      e.details = {{"email", a.account.substr(a.account.find(':') + 1)}, {"reason", reason}};
      if (a.user) e.target_type = "user", e.target_id = a.user->id;
      audit(ScopeMinter::mint(a.tenant->tenant.id), e, caller);
    }
    return invalid_credentials();
  };
  if (!a.tenant) throw fail("unknown tenant");
  if (!a.user) throw fail("unknown user");
  if (!password_ok) throw fail("wrong password");
  if (a.user->status != "active") throw fail("user disabled");
  if (a.tenant->tenant.status == "suspended")
    throw Error(Code::kTenantSuspended, "The tenant '" + a.tenant->tenant.slug + "' is suspended.");
  throttle_.succeeded(a.account);
}

std::optional<Service::CredentialTenant> Service::credential_tenant(std::string_view tenant_id) {
  if (tenant_id.empty() || tenant_id == kPlatformTenant) return std::nullopt;
  auto info = core_.find_tenant(tenant_id);
  if (!info || info->tenant.id != tenant_id) return std::nullopt;
  db::TenantScope scope = ScopeMinter::mint(info->tenant.id);
  return CredentialTenant{std::move(*info), std::move(scope)};
}

nlohmann::json Service::refresh(std::string_view refresh_token, const Caller& caller) {
  auto parts = split_opaque_token(refresh_token);
  if (!parts) throw invalid_refresh();
  const auto& [tenant_key, token] = *parts;
  std::optional<core::TenantInfo> tenant;
  if (tenant_key != kPlatformTenant) {
    tenant = core_.find_tenant(tenant_key);
    if (!tenant || tenant->tenant.id != tenant_key) throw invalid_refresh();
  }
  const db::TenantScope scope = ScopeMinter::mint(tenant_key);
  const Lifetimes life = lifetimes(tenant ? &*tenant : nullptr);
  const std::string next = make_opaque_token(tenant_key);
  RefreshToken replacement;
  replacement.id = new_uuid_v7();
  replacement.tenant_id = tenant_key;
  replacement.token_hash = sha256_hex(next);
  replacement.expires_at = Clock::unix_seconds() + life.refresh;
  replacement.created_at = format_rfc3339(Clock::now());
  RefreshToken spent;
  const RotateOutcome outcome =
      store_.rotate_refresh_token(scope, sha256_hex(token), replacement, Clock::unix_seconds(), spent);
  if (outcome == RotateOutcome::kReused) {
    log::warn("refresh token reused: session family revoked",
              {{"family_id", spent.family_id}, {"ip", caller.ip}});
    if (tenant) {
      AuditEvent e{"session.family_revoked", "anonymous", std::nullopt, "user", spent.subject_id};
      e.details = {{"family_id", spent.family_id}, {"reason", "refresh token reuse"}};
      audit(scope, e, caller);
    }
  }
  if (outcome != RotateOutcome::kRotated) throw invalid_refresh();

  Subject s;
  s.id = spent.subject_id;
  s.scope = spent.scope;
  if (tenant) {
    if (tenant->tenant.status == "suspended")
      throw Error(Code::kTenantSuspended, "The tenant '" + tenant->tenant.slug + "' is suspended.");
    auto user = store_.find_user(scope, spent.subject_id);
    if (!user || user->status != "active") {
      store_.revoke_refresh_family(scope, spent.family_id);
      throw invalid_refresh();
    }
    s.role = user->role;
    s.tenant_id = tenant->tenant.id;
    s.name = user->email;
  } else {
    auto who = core_.find_superadmin(spent.subject_id);
    if (!who) throw invalid_refresh();
    s.role = "SUPERADMIN";
    s.name = who->username;
  }
  nlohmann::json out = {{"access_token", sign_access(s, spent.family_id, life.access)},
                        {"token_type", "Bearer"},
                        {"expires_in", life.access},
                        {"refresh_token", next}};
  if (!s.scope.empty()) out["scope"] = s.scope;
  return out;
}

void Service::logout(const Principal& who, const std::optional<std::string>& refresh_token,
                     const Caller& caller) {
  const std::string tenant_key = who.tenant_id.empty() ? std::string(kPlatformTenant) : who.tenant_id;
  const db::TenantScope scope = ScopeMinter::mint(tenant_key);
  std::string family = who.session_id;
  if (refresh_token) {
    auto parts = split_opaque_token(*refresh_token);
    if (!parts || parts->first != tenant_key)
      throw Error::validation({{"refresh_token", "is not a refresh token of this session"}});
    auto t = store_.find_refresh_token(scope, sha256_hex(parts->second));
    if (!t || t->subject_id != who.id)
      throw Error::validation({{"refresh_token", "is not a refresh token of this session"}});
    family = t->family_id;
  }
  if (family.empty())
    throw Error(Code::kInvalidRequest,
                "This credential has no session to end (API keys are revoked instead).");
  store_.revoke_refresh_family(scope, family);
  if (!who.tenant_id.empty()) {
    AuditEvent e{"logout", actor_type(caller), who.id, "session", family};
    audit(scope, e, caller);
  }
}

nlohmann::json Service::register_user(std::string_view tenant, nlohmann::json user,
                                      const http::Context& request) {
  auto info = core_.find_tenant(tenant);
  if (!info) throw Error(Code::kNotFound, "No tenant has the id or slug '" + std::string(tenant) + "'.");
  if (info->tenant.status == "suspended")
    throw Error(Code::kTenantSuspended, "The tenant '" + info->tenant.slug + "' is suspended.");
  const auto& settings = info->tenant.settings;
  const auto allow = settings.find("allow_registration");
  if (allow == settings.end() || !allow->is_boolean() || !allow->get<bool>())
    throw Error(Code::kForbidden, "This tenant does not allow self sign-up (settings.allow_registration).");
  const db::TenantScope scope = ScopeMinter::mint(info->tenant.id);
  kit::Caller c{scope, kit::Actor{"anonymous", ""}};
  c.request = &request;
  user["role"] = "CLIENT";
  nlohmann::json row = add(c, *users_, user);
  nlohmann::json out = open_session(
      {row["id"].get<std::string>(), "CLIENT", info->tenant.id, row["email"].get<std::string>(), ""},
      lifetimes(&*info), std::nullopt);
  out["user"] = std::move(row);
  return out;
}

void Service::forgot_password(std::string_view tenant, std::string_view email, const Caller& caller) {
  // Runs after the answer has gone (see the route), so nothing here is observable by the caller.
  auto info = core_.find_tenant(tenant);
  const std::string account = (info ? info->tenant.id : "?" + lowercase(tenant)) + ":" + lowercase(email);
  const int64_t now = Clock::unix_seconds();
  if (reset_throttle_.retry_after(account, caller.ip, now)) {
    log::warn("password reset request throttled", {{"ip", caller.ip}});
    return;
  }
  reset_throttle_.failed(account, caller.ip, now);  // counted whether or not the account exists
  if (!info || info->tenant.status != "active") return;
  const db::TenantScope scope = ScopeMinter::mint(info->tenant.id);
  auto user = store_.find_user_by_email(scope, email);
  if (!user || user->status != "active") return;
  const std::string token = make_opaque_token(info->tenant.id);
  store_.insert_password_reset(scope, user->id, sha256_hex(token), Clock::unix_seconds() + kResetTtl);
  AuditEvent e{"password.reset_requested", "anonymous", std::nullopt, "user", user->id};
  audit(scope, e, caller);
  Mail mail{user->email, "Reset your password",
            fmt::format("Someone asked to reset the password of {} at {}.\n\n"
                        "To choose a new password, open this link within one hour:\n"
                        "{}/reset-password?token={}\n\n"
                        "If it was not you, ignore this mail; your password stays as it is.\n",
                        user->email, info->tenant.name, issuer_, token)};
  try {
    mailer_->send(mail);
  } catch (const std::exception& ex) {
    log::error("password reset mail not sent", {{"error", ex.what()}});
  }
}

void Service::reset_password(std::string_view token, std::string_view password, const Caller& caller) {
  auto parts = split_opaque_token(token);
  auto invalid = [] {
    return Error::validation({{"token", "is not a valid, unused, unexpired reset token"}});
  };
  if (!parts || parts->first == kPlatformTenant) throw invalid();
  if (auto why = password_problem(password)) throw Error::validation({{"password", *why}});
  auto info = core_.find_tenant(parts->first);
  if (!info || info->tenant.id != parts->first) throw invalid();
  const db::TenantScope scope = ScopeMinter::mint(info->tenant.id);
  auto user_id = store_.consume_password_reset(scope, sha256_hex(parts->second), Clock::unix_seconds());
  if (!user_id) throw invalid();
  if (!store_.set_password_hash(scope, *user_id, hash_on_pool(password))) throw invalid();
  store_.revoke_subject_sessions(scope, *user_id);
  AuditEvent e{"password.reset", "user", *user_id, "user", *user_id};
  audit(scope, e, caller);
}

// ---- users ------------------------------------------------------------------------------------------

bool Service::session_active(const std::string& tenant_id, const std::string& session_id) {
  return store_.session_active(
      ScopeMinter::mint(tenant_id.empty() ? std::string(kPlatformTenant) : tenant_id), session_id);
}

void Service::attach(std::shared_ptr<db::Database> db, const kit::Kit& kit, const kit::Resource& users,
                     const kit::Resource& keys) {
  db_ = std::move(db);
  kit_ = &kit;
  users_ = &users;
  keys_ = &keys;
}

nlohmann::json Service::add(kit::Caller& c, const kit::Resource& r, const nlohmann::json& body,
                            const nlohmann::json& set) {
  std::vector<FieldError> errors;
  nlohmann::json patch = kit::read_fields(r, body, kit::Mode::kCreate, errors);
  if (!errors.empty()) throw Error::validation(std::move(errors));
  for (const auto& [k, v] : set.items()) patch[k] = v;
  nlohmann::json once = nlohmann::json::object();
  kit::prepare(r, c, patch, once, true);  // hashing happens here, before the transaction
  nlohmann::json row = db_->write(c.scope, [&](db::Tx& tx) { return kit_->create(tx, c, r, patch); });
  row.update(once);
  return row;
}

nlohmann::json Service::create_user(const db::TenantScope& scope, const std::string& email,
                                    const std::string& name, const std::string& role,
                                    const std::string& password) {
  kit::Caller c{scope, kit::Actor{"system", ""}};
  nlohmann::json body = {{"email", email}, {"role", role}, {"password", password}};
  if (!name.empty()) body["name"] = name;
  return add(c, *users_, body);
}

FirstAdmin Service::create_first_admin(const db::TenantScope& scope, const std::string& email,
                                       const std::optional<std::string>& password) {
  kit::Caller c{scope, kit::Actor{"system", ""}};
  nlohmann::json body = {{"email", email}, {"role", "ADMIN"}};
  if (password) body["password"] = *password;
  FirstAdmin out;
  out.admin = add(c, *users_, body);  // with initial_password when one was generated
  nlohmann::json key = add(c, *keys_, {{"name", "Default secret key"}}, {{"created_by", out.admin["id"]}});
  out.api_key = key.at("key").get<std::string>();
  return out;
}

// ---- API keys ---------------------------------------------------------------------------------------

std::optional<ResolvedKey> Service::resolve_api_key(std::string_view prefix) {
  auto tenant_id = store_.platform_tenant_of_key_prefix(prefix);
  if (!tenant_id) return std::nullopt;
  auto key = store_.find_api_key_by_prefix(ScopeMinter::mint(*tenant_id), prefix);
  if (!key || key->revoked_at) return std::nullopt;
  auto tenant = core_.find_tenant(*tenant_id);
  if (!tenant) return std::nullopt;
  return ResolvedKey{std::move(*key), std::move(*tenant)};
}

void Service::note_key_used(const std::string& tenant_id, const std::string& key_id) {
  std::lock_guard lock(key_use_mutex_);
  auto& uses = key_use_[tenant_id];
  const std::string at = format_rfc3339(Clock::now());
  for (auto& [id, when] : uses)
    if (id == key_id) {
      when = at;
      return;
    }
  uses.emplace_back(key_id, at);
}

void Service::flush_key_use() {
  decltype(key_use_) pending;
  {
    std::lock_guard lock(key_use_mutex_);
    pending.swap(key_use_);
  }
  for (const auto& [tenant, uses] : pending) {
    try {
      store_.touch_api_keys_used(ScopeMinter::mint(tenant), uses);
    } catch (const std::exception& e) {
      log::warn("could not record API key use", {{"tenant_id", tenant}, {"error", e.what()}});
    }
  }
}

// ---- audit ------------------------------------------------------------------------------------------

void Service::audit(const db::TenantScope& scope, AuditEvent e, const Caller& caller) {
  if (!e.ip && !caller.ip.empty()) e.ip = caller.ip;
  try {
    store_.append_audit(scope, e);
  } catch (const std::exception& ex) {
    // Never lose the action because its audit row failed; say so loudly instead.
    log::error("audit write failed",
               {{"action", e.action}, {"tenant_id", scope.tenant_id()}, {"error", ex.what()}});
  }
}

}  // namespace cdx::auth
