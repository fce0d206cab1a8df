#include "core/service.hpp"

#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/password.hpp"

namespace cdx::core {

nlohmann::json TenantService::create_tenant(const nlohmann::json& fields, const std::string& admin_email,
                                            const std::optional<std::string>& admin_password,
                                            const kit::Actor& actor) {
  const kit::Caller c = caller(actor);
  nlohmann::json row = db_.write_platform([&](db::Tx& tx) { return kit_.create(tx, c, tenants_, fields); });
  const std::string id = row.at("id").get<std::string>();
  // Two databases, no distributed transaction, and no transaction held open across a call to auth: undo
  // the tenant if its first admin cannot be made.
  auth::FirstAdmin admin;
  try {
    admin = auth_.create_first_admin(minter_.mint(id), admin_email, admin_password);
  } catch (...) {
    db_.write_platform([&](db::Tx& tx) { kit_.remove(tx, c, tenants_, id); });
    throw;
  }
  row["admin"] = std::move(admin.admin);
  row["api_key"] = std::move(admin.api_key);
  log::info("tenant created", {{"tenant_id", id}, {"slug", row.at("slug").get<std::string>()}});
  return row;
}

nlohmann::json TenantService::create_tenant(const NewTenant& in) {
  nlohmann::json doc = {{"name", in.name}, {"slug", in.slug}, {"settings", in.settings}};
  if (in.plan) doc["plan"] = *in.plan;
  std::vector<FieldError> errors;
  nlohmann::json fields = kit::read_fields(tenants_, doc, kit::Mode::kCreate, errors);
  if (!errors.empty()) throw Error::validation(std::move(errors));
  return create_tenant(fields, in.admin_email, in.admin_password, {"superadmin", ""});
}

Tenant TenantService::get_tenant(std::string_view id_or_slug) {
  std::optional<nlohmann::json> row;
  if (plausible_tenant_key(id_or_slug))
    row = db_.read_platform(
        [&](db::Tx& tx) { return kit_.find(tx, caller({}), tenants_, std::string(id_or_slug)); });
  if (!row) throw Error(Code::kNotFound, "No tenant has the id or slug '" + std::string(id_or_slug) + "'.");
  return tenant_from_json(*row);
}

Tenant TenantService::set_status(std::string_view id_or_slug, const std::string& status,
                                 const kit::Actor& actor) {
  const Tenant before = get_tenant(id_or_slug);
  const nlohmann::json row = db_.write_platform([&](db::Tx& tx) {
    return kit_.update(tx, caller(actor), tenants_, before.id, nlohmann::json{{"status", status}});
  });
  auth_.tenant_changed(before.id);
  log::info("tenant status changed", {{"tenant_id", before.id}, {"status", status}});
  return tenant_from_json(row);
}

void TenantService::delete_tenant(std::string_view id_or_slug, const kit::Actor& actor) {
  Tenant t = get_tenant(id_or_slug);
  // The row and its tenant.deleted event commit together; the purge of every module follows from the event
  // (restart-safe: the subscriber's cursor moves only once every module has purged).
  db_.write_platform([&](db::Tx& tx) { kit_.remove(tx, caller(actor), tenants_, t.id); });
  auth_.tenant_changed(t.id);
  log::info("tenant deleted", {{"tenant_id", t.id}, {"slug", t.slug}});
}

nlohmann::json TenantService::usage(std::string_view id_or_slug, const std::string& from,
                                    const std::string& to) {
  const Tenant t = get_tenant(id_or_slug);
  nlohmann::json days = nlohmann::json::array(), keys = nlohmann::json::array();
  int64_t total = 0;
  for (const auto& [day, calls] : store_.usage_by_day(t.id, from, to)) {
    days.push_back({{"day", day}, {"calls", calls}});
    total += calls;
  }
  for (const auto& [key, calls] : store_.usage_by_key(t.id, from, to))
    keys.push_back(
        {{"api_key_id", key.empty() ? nlohmann::json(nullptr) : nlohmann::json(key)}, {"calls", calls}});
  return {{"tenant_id", t.id}, {"from", from}, {"to", to},
          {"total", total},    {"days", days}, {"api_keys", keys}};
}

void TenantService::seed_in_tenant(std::string_view tenant,
                                   const std::function<void(const db::TenantScope&)>& fn) {
  fn(minter_.mint(get_tenant(tenant).id));
}

void TenantService::seed_user(std::string_view tenant, const std::string& email, const std::string& name,
                              const std::string& role, const std::string& password) {
  Tenant t = get_tenant(tenant);
  auth_.create_user(minter_.mint(t.id), email, name, role, password);
}

bool TenantService::create_superadmin(const std::string& username, const std::string& password) {
  Superadmin s{new_uuid_v7(), username, hash_password(password)};
  try {
    store_.insert_superadmin(s);
  } catch (const db::UniqueViolation&) {
    return false;
  }
  return true;
}

bool TenantService::bootstrap_superadmin(const std::string& spec) {
  const size_t colon = spec.find(':');
  if (spec.empty() || colon == std::string::npos) return false;
  if (store_.count_superadmins() > 0) return false;
  return create_superadmin(spec.substr(0, colon), spec.substr(colon + 1));
}

std::optional<TenantInfo> TenantService::find_tenant(std::string_view id_or_slug) {
  if (!plausible_tenant_key(id_or_slug)) return std::nullopt;
  return db_.read_platform([&](db::Tx& tx) -> std::optional<TenantInfo> {
    const kit::Caller c = caller({});
    auto t = kit_.find(tx, c, tenants_, std::string(id_or_slug));
    if (!t) return std::nullopt;
    auto p = kit_.find(tx, c, plans_, t->at("plan").get<std::string>());
    return TenantInfo{tenant_from_json(*t), p ? plan_from_json(*p) : Plan{}};
  });
}

std::optional<SuperadminIdentity> TenantService::verify_superadmin(std::string_view username,
                                                                   std::string_view password) {
  auto s = store_.find_superadmin_by_username(username);
  if (!s) {
    verify_dummy_password(password);
    return std::nullopt;
  }
  if (!verify_password(s->password_hash, password)) return std::nullopt;
  store_.touch_superadmin_login(s->id);
  return SuperadminIdentity{s->id, s->username};
}

std::optional<SuperadminIdentity> TenantService::find_superadmin(std::string_view id) {
  auto s = store_.find_superadmin(id);
  if (!s) return std::nullopt;
  return SuperadminIdentity{s->id, s->username};
}

}  // namespace cdx::core
