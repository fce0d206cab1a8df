// Auth's kit resources. The kit reads bodies, writes rows and events, lists and documents them; the hooks
// here hold auth's own rules. Slow or remote work (Argon2id, the plan's quotas from core) happens in the
// prepare hook, before the write transaction; the rest inside it, so a rule and its audit entry commit with
// the change.
#include "auth/resources.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "auth/oauth_service.hpp"
#include "auth/oauth_store.hpp"
#include "auth/service.hpp"
#include "auth/store.hpp"
#include "common/clock.hpp"
#include "common/ids.hpp"
#include "common/password.hpp"
#include "common/validate.hpp"
#include "kit/kit.hpp"

namespace cdx::auth {

using kit::Change;
using nlohmann::json;

namespace {

constexpr size_t kClientRandomLen = 24;  // client_id = "<tenant id>." + 24 base62
constexpr size_t kClientSecretLen = 43;  // ~256 bits
constexpr int64_t kMaxClientsPerTenant = 100;

const Principal* principal_of(const kit::Caller* c) {
  return c && c->request ? c->request->principal.get() : nullptr;
}

// An audit entry of the change, in its transaction. Writes made by code (seeding) are not audited.
void audit(Change& c, std::string action, std::string target_type, const std::string& target_id,
           json details = json::object()) {
  if (!c.caller || !c.caller->request) return;
  AuditEvent e{
      std::move(action),      c.actor.type, c.actor.id.empty() ? std::nullopt : std::optional(c.actor.id),
      std::move(target_type), target_id,    std::string(c.caller->request->req.remote)};
  e.details = std::move(details);
  Store::append_audit(c.tx, c.scope, e);
}

std::optional<int64_t> noted(const Change& c, const char* name) {
  if (!c.caller || !c.caller->notes.contains(name)) return std::nullopt;
  return c.caller->notes.at(name).get<int64_t>();
}

bool contains(const json& list, std::string_view s) {
  return std::any_of(list.begin(), list.end(), [&](const json& v) { return v == s; });
}

json strings(const std::vector<std::string>& v) { return json(v); }

// What a credential may create or change (docs/auth.md): a scope-limited credential — an API key, an OAuth
// client's token — hands out nothing it does not hold. Users and ADMIN keys hold everything of their tenant.
const Principal* limited(const kit::Caller* c) {
  const Principal* who = principal_of(c);
  if (!who || (who->kind != Principal::Kind::kApiKey && !who->scope_limited) || who->has_scope("*"))
    return nullptr;
  return who;
}

// An ADMIN user holds every scope of the tenant: only a credential holding '*' (or an ADMIN) makes one,
// changes one (its password above all) or removes one.
void check_admin_user(const Change& c) {
  const bool admin =
      c.row.value("role", "") == "ADMIN" || (c.before && c.before->value("role", "") == "ADMIN");
  if (admin && limited(c.caller))
    throw Error(
        Code::kForbidden,
        "An ADMIN user holds every scope of the tenant: only an ADMIN or a key holding '*' may create, "
        "change or delete one; this key holds fewer.");
}

// An OAuth client's API scopes are what its tokens will hold: a limited credential registers, changes or
// rotates the secret of a client only within its own scopes.
void check_client_scopes(const Change& c) {
  const Principal* who = limited(c.caller);
  if (!who) return;
  auto check = [&](const json& scopes) {
    for (const auto& s : scopes) {
      const std::string scope = s.get<std::string>();
      if (std::find(oidc_scopes().begin(), oidc_scopes().end(), scope) != oidc_scopes().end()) continue;
      if (!who->has_scope(scope))
        throw Error(Code::kForbidden,
                    "The calling credential does not hold the scope '" + scope + "' this client would hold.");
    }
  };
  check(c.row.at("scopes"));
  if (c.before) check(c.before->at("scopes"));
}

}  // namespace

// ---- users
// ----------------------------------------------------------------------------------------------------

kit::Resource user_resource(Service& service, Invalidate invalidate) {
  kit::Resource r("auth", "user", "users");
  r.field(kit::text("email", 254)
              .min(3)
              .required()
              .check([](json& v, kit::Problems& p) {
                if (!valid_email(v.get_ref<const std::string&>())) p.fail("must be a valid email address");
              })
              .format("email")
              .unique("email_normalized")
              .searchable()
              .doc("unique per tenant (compared lower-case); cannot be changed"))
      .field(kit::text("name", 200).searchable().doc("default: the email's local part (null resets it)"))
      .field(kit::choice("role", {"ADMIN", "CLIENT"}).not_null().defaults("CLIENT").filter())
      .field(kit::choice("status", {"active", "disabled"}).not_null().defaults("active").filter())
      .field(kit::text("password", 256)
                 .not_null()
                 .write_only()
                 .doc("8+ characters, not a common password; a new one ends the user's sessions and spends "
                      "every outstanding reset link"))
      .field(
          kit::text("current_password", 256)
              .write_only()
              .doc("required with password when users change their own (a stolen access token alone cannot)"))
      .field(kit::text("password_hash", 200).hidden())
      .field(kit::datetime("last_login_at").read_only())
      .derived("email_normalized",
               [](const json& row, std::string& keep) -> db::Param {
                 keep = lowercase(row.at("email").get<std::string>());
                 return std::string_view(keep);
               })
      .show_tenant_id()
      .item_access(http::Access::kTenantAdminOrSelf)
      .reveals(
          kit::text("initial_password", 64).doc("generated when no password was given: in this answer only"))
      .describe_create("Create a user (ADMIN or CLIENT); a generated password is answered once")
      .describe_list("List the tenant's users (newest first; sort, q over email and name, role, status)")
      .describe_delete("Delete a user and end its sessions")
      .hooks({
          .validate =
              [](Change& c) {
                check_admin_user(c);
                const std::string email = c.row.at("email").get<std::string>();
                if (!c.value("name")) c.row["name"] = email.substr(0, email.find('@'));
                if (!c.before) {
                  if (auto max = noted(c, "max_users"); max && c.errors.empty()) {
                    // Counted under a per-tenant lock: concurrent creates cannot both take the last seat.
                    c.tx.lock("auth.users:" + c.scope.tenant_id());
                    if (Store::count_users(c.tx, c.scope) >= *max)
                      throw Error(
                          Code::kQuotaExceeded,
                          fmt::format("The tenant's plan allows {} users; remove one or change plan.", *max));
                  }
                  return;
                }
                const json& b = *c.before;
                if (c.given("email") && c.row["email"] != b["email"])
                  c.errors.push_back({"email", "cannot be changed"});
                const bool demotes = b["role"] == "ADMIN" && b["status"] == "active" &&
                                     (c.row["role"] != "ADMIN" || c.row["status"] != "active");
                if (demotes) {
                  // Under the lock, so two concurrent demotions cannot both pass.
                  c.tx.lock("auth.users:" + c.scope.tenant_id());
                  if (Store::count_active_admins(c.tx, c.scope) <= 1)
                    throw Error(Code::kConflict,
                                "This is the tenant's last active ADMIN; promote another user first.");
                }
              },
          .after_write =
              [](Change& c) {
                const std::string id = c.row.at("id").get<std::string>();
                if (!c.before) {
                  audit(c, "user.created", "user", id, {{"email", c.row["email"]}, {"role", c.row["role"]}});
                  return;
                }
                const json& b = *c.before;
                const bool role = b["role"] != c.row["role"], status = b["status"] != c.row["status"];
                const bool password = c.given("password");
                // A new password, role or status ends the user's sessions (committed: caches dropped too); a
                // new password also spends the reset links still out.
                if (role || status || password) Store::revoke_subject_sessions(c.tx, c.scope, id);
                if (password) Store::spend_password_resets(c.tx, c.scope, id);
                if (role)
                  audit(c, "user.role_changed", "user", id, {{"from", b["role"]}, {"to", c.row["role"]}});
                if (status)
                  audit(c, c.row["status"] == "disabled" ? "user.disabled" : "user.enabled", "user", id);
                if (password) audit(c, "user.password_changed", "user", id);
              },
          .before_delete =
              [](Change& c) {
                check_admin_user(c);
                if (c.row["role"] == "ADMIN" && c.row["status"] == "active") {
                  c.tx.lock("auth.users:" + c.scope.tenant_id());
                  if (Store::count_active_admins(c.tx, c.scope) <= 1)
                    throw Error(Code::kConflict,
                                "This is the tenant's last active ADMIN; promote another user first.");
                }
                Store::revoke_subject_sessions(c.tx, c.scope, c.row.at("id").get<std::string>());
              },
          .after_delete =
              [](Change& c) {
                audit(c, "user.deleted", "user", c.row.at("id").get<std::string>(),
                      {{"email", c.row["email"]}});
              },
          .prepare =
              [&service](kit::Prepare& p) {
                const Principal* who = principal_of(&p.caller);
                if (!p.create && who && who->role == Role::kClient &&
                    (p.patch.contains("role") || p.patch.contains("status")))
                  throw Error(Code::kForbidden, "Only an ADMIN may change a user's role or status.");
                const bool from_api = p.caller.request != nullptr;  // seeding sets what it likes
                std::string password;
                if (auto it = p.patch.find("password"); it != p.patch.end()) {
                  password = it->get<std::string>();
                  // ASVS 2.1.6: users changing their own password prove they know the current one.
                  if (!p.create && from_api && who && who->kind == Principal::Kind::kUser &&
                      p.caller.request->req.param(0) == who->id) {
                    auto current = p.patch.find("current_password");
                    if (current == p.patch.end())
                      throw Error::validation(
                          {{"current_password", "is required to change your own password"}});
                    service.check_own_password(p.caller.scope, who->id, current->get<std::string>(),
                                               std::string(p.caller.request->req.remote));
                  }
                  if (from_api)
                    if (auto why = password_problem(password)) throw Error::validation({{"password", *why}});
                } else if (p.create) {
                  password = random_token(20);
                  p.once["initial_password"] = password;
                }
                // Argon2id on the hashing pool, before the write transaction opens.
                if (!password.empty()) p.patch["password_hash"] = service.hash_on_pool(password);
                if (p.create && from_api) {
                  auto info = service.core().find_tenant(p.caller.scope.tenant_id());
                  p.caller.notes["max_users"] = info ? info->plan.max_users : 0;
                }
              },
          .committed = invalidate,  // a disabled, demoted or deleted user's tokens stop at once
      });
  return r;
}

// ---- API keys
// -------------------------------------------------------------------------------------------------

kit::Resource api_key_resource(Service& service, Invalidate invalidate) {
  kit::Resource r("auth", "api_key", "api_keys");
  r.segment("api-keys")
      .schema_name("ApiKey")
      .field(kit::text("name", 200).required().searchable())
      .field(kit::choice("type", {"secret", "publishable"}).not_null().defaults("secret").filter())
      .field(kit::text("prefix", 32).read_only().doc("the key's first characters, to recognise it in lists"))
      .field(kit::text_list("scopes", 20, 40)
                 .doc("default: * for a secret key; cms:read, analytics:ingest, auth:login for a publishable "
                      "one"))
      .field(kit::text("key_hash", 64).hidden())
      .field(kit::id("created_by").read_only())
      .field(kit::datetime("expires_at").doc("in the future; the key stops working then"))
      .field(kit::datetime("revoked_at").read_only())
      .field(kit::datetime("last_used_at").read_only().doc("recorded at most once a second"))
      .show_tenant_id()
      .soft_delete("revoked_at")
      .routes({kit::Op::kCreate, kit::Op::kList, kit::Op::kDelete})
      .reveals(kit::text("key", 64).doc("the full key: in this answer only"))
      .describe_create("Create an API key; the full key is in this answer only")
      .describe_list("List the tenant's active API keys (prefix only, never the key)")
      .describe_delete("Revoke an API key (effective at once)")
      .hooks({
          .validate =
              [](Change& c) {
                const bool publishable = c.row["type"] == "publishable";
                if (!c.value("scopes"))
                  c.row["scopes"] = publishable ? strings(publishable_scopes()) : json::array({"*"});
                const auto& allowed = publishable ? publishable_scopes() : secret_scopes();
                for (const auto& s : c.row["scopes"])
                  if (std::find(allowed.begin(), allowed.end(), s.get<std::string>()) == allowed.end())
                    c.errors.push_back({"scopes", "'" + s.get<std::string>() + "' is not a scope a " +
                                                      c.row["type"].get<std::string>() + " key may hold"});
                const Principal* who = principal_of(c.caller);
                // A key can only hand out what it holds itself.
                if (who && who->kind == Principal::Kind::kApiKey) {
                  const auto& held = who->scopes;
                  const bool all = std::find(held.begin(), held.end(), "*") != held.end();
                  for (const auto& s : c.row["scopes"])
                    if (!all && std::find(held.begin(), held.end(), s.get<std::string>()) == held.end())
                      throw Error(Code::kForbidden, "The calling key does not hold the scope '" +
                                                        s.get<std::string>() + "' it tries to grant.");
                }
                if (who && who->kind == Principal::Kind::kUser && !c.value("created_by"))
                  c.row["created_by"] = who->id;
                if (const json* exp = c.value("expires_at"))
                  if (auto t = parse_rfc3339(exp->get<std::string>()); t && *t <= Clock::now())
                    c.errors.push_back({"expires_at", "must be in the future"});
                if (auto max = noted(c, "max_api_keys"); max && c.errors.empty()) {
                  c.tx.lock("auth.api_keys:" + c.scope.tenant_id());
                  if (Store::count_active_api_keys(c.tx, c.scope) >= *max)
                    throw Error(
                        Code::kQuotaExceeded,
                        fmt::format("The tenant's plan allows {} API keys; revoke one or change plan.",
                                    *max));
                }
              },
          .after_write =
              [](Change& c) {
                const std::string id = c.row.at("id").get<std::string>();
                Store::index_api_key(c.tx, c.scope, c.row.at("prefix").get<std::string>(), id);
                audit(c, "api_key.created", "api_key", id,
                      {{"name", c.row["name"]},
                       {"type", c.row["type"]},
                       {"prefix", c.row["prefix"]},
                       {"scopes", c.row["scopes"]}});
              },
          .after_delete =
              [](Change& c) { audit(c, "api_key.revoked", "api_key", c.row.at("id").get<std::string>()); },
          .prepare =
              [&service](kit::Prepare& p) {
                if (!p.create) return;
                const bool secret = p.patch.value("type", "secret") == "secret";
                const std::string full =
                    (secret ? "cdx_sk_" : "cdx_pk_") + random_token(kKeyLen - kKeyTypeLen);
                p.patch["prefix"] = full.substr(0, kKeyPrefixLen);
                p.patch["key_hash"] = sha256_hex(full);  // only the hash is kept
                p.once["key"] = full;
                if (p.caller.request) {
                  auto info = service.core().find_tenant(p.caller.scope.tenant_id());
                  p.caller.notes["max_api_keys"] = info ? info->plan.max_api_keys : 0;
                }
              },
          .committed = invalidate,  // a revoked key stops at once
      });
  return r;
}

// ---- OAuth2 clients
// -------------------------------------------------------------------------------------------

namespace {

// The registration rules across a client's fields (RFC 6749 §2, OAuth 2.0 Security BCP).
void check_client(Change& c) {
  const json& grants = c.row["grant_types"];
  const bool is_public = c.row["type"] == "public";
  if (grants.empty())
    c.errors.push_back(
        {"grant_types", "must name at least one of authorization_code, client_credentials, refresh_token"});
  for (const auto& g : grants)
    if (!contains(strings(grant_types()), g.get<std::string>())) {
      c.errors.push_back(
          {"grant_types", "may hold only authorization_code, client_credentials and refresh_token"});
      break;
    }
  if (contains(grants, "refresh_token") && !contains(grants, "authorization_code"))
    c.errors.push_back(
        {"grant_types", "refresh_token needs authorization_code (refresh tokens come from codes)"});
  if (is_public && contains(grants, "client_credentials"))
    c.errors.push_back({"grant_types", "a public client cannot use client_credentials (it has no secret)"});
  const json& uris = c.row["redirect_uris"];
  for (size_t i = 0; i < uris.size(); ++i)
    if (auto why = redirect_uri_problem(uris[i].get<std::string>()))
      c.errors.push_back({"redirect_uris[" + std::to_string(i) + "]", *why});
  if (contains(grants, "authorization_code") && uris.empty())
    c.errors.push_back({"redirect_uris", "at least one is required for the authorization_code grant"});
  const json& origins = c.row["allowed_origins"];
  for (size_t i = 0; i < origins.size(); ++i)
    if (auto why = origin_problem(origins[i].get<std::string>()))
      c.errors.push_back({"allowed_origins[" + std::to_string(i) + "]", *why});
  for (const auto& s : c.row["scopes"])
    if (!contains(strings(oidc_scopes()), s.get<std::string>()) &&
        !contains(strings(api_scopes()), s.get<std::string>())) {
      c.errors.push_back({"scopes",
                          "may hold openid, profile, email and API scopes such as crm:read or "
                          "billing:write ('*' is not allowed)"});
      break;
    }
}

}  // namespace

kit::Resource oauth_client_resource(Service&, Invalidate invalidate) {
  kit::Resource r("auth", "oauth_client", "oauth_clients");
  r.segment("clients")
      .schema_name("OAuthClient")
      .key("client_id")
      .field(
          kit::text("client_id", 128)
              .required()
              .read_only()
              .doc("<tenant id>.<random>: names the tenant at the token endpoint; item routes take it too"))
      .field(kit::text("name", 200).required().searchable().doc("shown on the sign-in page"))
      .field(kit::choice("type", {"confidential", "public"})
                 .not_null()
                 .defaults("confidential")
                 .filter()
                 .doc("confidential: has a client_secret (servers); public: none (SPAs, mobile apps). Cannot "
                      "be changed"))
      .field(kit::choice("token_endpoint_auth_method", {"client_secret_basic", "none"}).read_only())
      .field(kit::text("secret_hash", 64).hidden())
      .field(kit::text_list("redirect_uris", 20, 2000)
                 .defaults(json::array())
                 .doc("absolute https URLs (http only for localhost), compared exactly; no fragment, no "
                      "wildcard"))
      .field(kit::text_list("allowed_origins", 20, 300).defaults(json::array()).doc("browser origins (CORS)"))
      .field(kit::text_list("grant_types", 3, 40)
                 .defaults(json::array({"authorization_code", "refresh_token"}))
                 .doc("authorization_code, refresh_token, client_credentials"))
      .field(kit::text_list("scopes", 50, 64)
                 .defaults(strings(oidc_scopes()))
                 .doc("openid, profile, email and API scopes"))
      .field(kit::id("created_by").read_only())
      .show_tenant_id()
      .reveals(kit::text("client_secret", 64).doc("a confidential client's secret: in this answer only"))
      .describe_create(
          "Register an OAuth2 client; a confidential client's client_secret is in this answer only")
      .describe_list("List the tenant's OAuth2 clients, newest first (never their secrets)")
      .describe_delete("Delete an OAuth2 client; revokes the refresh tokens issued to it")
      .hooks({
          .validate =
              [](Change& c) {
                if (c.before && c.row["type"] != (*c.before)["type"])
                  c.errors.push_back({"type", "cannot be changed; register a new client instead"});
                c.row["token_endpoint_auth_method"] =
                    c.row["type"] == "public" ? "none" : "client_secret_basic";
                check_client(c);
                check_client_scopes(c);
                if (c.before || !c.errors.empty()) return;
                const Principal* who = principal_of(c.caller);
                if (who && who->kind == Principal::Kind::kUser) c.row["created_by"] = who->id;
                c.tx.lock("auth.oauth_clients:" + c.scope.tenant_id());
                if (OAuthStore::count_clients(c.tx, c.scope) >= kMaxClientsPerTenant)
                  throw Error(Code::kQuotaExceeded,
                              "A tenant may register at most 100 OAuth clients; delete one first.");
              },
          .after_write =
              [](Change& c) {
                const std::string id = c.row.at("id").get<std::string>();
                if (!c.before) {
                  audit(c, "client.created", "oauth_client", id,
                        {{"client_id", c.row["client_id"]},
                         {"name", c.row["name"]},
                         {"type", c.row["type"]},
                         {"grant_types", c.row["grant_types"]}});
                } else if (c.given("secret_hash")) {
                  audit(c, "client.secret_rotated", "oauth_client", id, {{"client_id", c.row["client_id"]}});
                } else {
                  json changed = json::array();
                  for (const char* f : {"name", "redirect_uris", "allowed_origins", "grant_types", "scopes"})
                    if ((*c.before)[f] != c.row[f]) changed.push_back(f);
                  audit(c, "client.updated", "oauth_client", id,
                        {{"client_id", c.row["client_id"]}, {"changed", changed}});
                }
              },
          .before_delete =
              [](Change& c) {
                OAuthStore::forget_client(c.tx, c.scope, c.row.at("client_id").get<std::string>());
              },
          .after_delete =
              [](Change& c) {
                audit(c, "client.deleted", "oauth_client", c.row.at("id").get<std::string>(),
                      {{"client_id", c.row["client_id"]}, {"name", c.row["name"]}});
              },
          .prepare =
              [](kit::Prepare& p) {
                if (!p.create) return;
                p.patch["client_id"] = p.caller.scope.tenant_id() + "." + random_token(kClientRandomLen);
                if (p.patch.value("type", "confidential") == "confidential") {
                  auto secret = new_client_secret();
                  p.patch["secret_hash"] = secret.second;
                  p.once["client_secret"] = secret.first;
                }
              },
          .committed = invalidate,  // a deleted client's sessions end at once
      });
  return r;
}

std::pair<std::string, std::string> new_client_secret() {
  std::string secret = "cdx_cs_" + random_token(kClientSecretLen);
  std::string hash = sha256_hex(secret);
  return {std::move(secret), std::move(hash)};
}

// ---- bodies of the other routes
// -------------------------------------------------------------------------------

namespace bodies {

namespace {
// Unknown members are skipped, as these routes always did (clients send extra ones).
kit::Resource body(const char* name, std::vector<kit::Field> fields) {
  kit::Resource r("auth", name, name);
  r.ignore_unknown();
  for (auto& f : fields) r.field(std::move(f));
  return r;
}
kit::Field password() { return kit::text("password", 256).required().write_only(); }
kit::Field tenant() { return kit::text("tenant", 64).doc("the tenant's id or slug"); }
}  // namespace

const kit::Resource& superadmin_login() {
  static const kit::Resource r =
      body("superadmin_login", {kit::text("username", 200).required(), password()});
  return r;
}

const kit::Resource& login() {
  static const kit::Resource r = body("login", {kit::text("email", 254).required(), password(), tenant()});
  return r;
}

const kit::Resource& refresh() {
  static const kit::Resource r = body("refresh", {kit::text("refresh_token", 200)});  // or the cookie
  return r;
}

const kit::Resource& logout() {
  static const kit::Resource r = body("logout", {kit::text("refresh_token", 200)});
  return r;
}

const kit::Resource& sign_up() {
  static const kit::Resource r = body(
      "register", {kit::text("email", 254).min(3).required(), password(), kit::text("name", 200), tenant()});
  return r;
}

const kit::Resource& password_forgot() {
  static const kit::Resource r = body("password_forgot", {kit::text("email", 254).required(), tenant()});
  return r;
}

const kit::Resource& password_reset() {
  static const kit::Resource r = body("password_reset", {kit::text("token", 200).required(), password()});
  return r;
}

const kit::Resource& first_admin() {
  static const kit::Resource r = body(
      "first_admin", {kit::text("email", 254).min(3).required(), kit::text("password", 256).write_only()});
  return r;
}

const kit::Resource& seed_user() {
  static const kit::Resource r =
      body("seed_user", {kit::text("email", 254).min(3).required(), kit::text("name", 200).min(0),
                         kit::text("role", 16).required(), password()});
  return r;
}

}  // namespace bodies

}  // namespace cdx::auth
