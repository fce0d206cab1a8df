#include "core/service.hpp"

#include <algorithm>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/password.hpp"
#include "common/validate.hpp"

namespace cdx::core {

void TenantService::check_plan_exists(const std::string& plan, const char* field) {
  if (!store_.find_plan(plan)) throw Error::validation({{field, "unknown plan '" + plan + "'"}});
}

nlohmann::json TenantService::create_tenant(const NewTenant& in) {
  std::vector<FieldError> errors;
  if (auto why = slug_problem(in.slug)) errors.push_back({"slug", *why});
  if (!valid_email(in.admin_email)) errors.push_back({"admin_email", "must be a valid email address"});
  if (in.admin_password && !in.seeding)
    if (auto why = password_problem(*in.admin_password)) errors.push_back({"admin_password", *why});
  const std::string plan = in.plan.value_or("free");
  if (!store_.find_plan(plan)) errors.push_back({"plan", "unknown plan '" + plan + "'"});
  if (!errors.empty()) throw Error::validation(std::move(errors));

  Tenant t;
  t.id = new_uuid_v7();
  t.slug = in.slug;
  t.name = in.name;
  t.plan = plan;
  t.settings = in.settings;
  t.created_at = t.updated_at = format_rfc3339(Clock::now());
  try {
    store_.insert_tenant(t);
  } catch (const db::UniqueViolation&) {
    throw Error(Code::kConflict, "A tenant with the slug '" + in.slug + "' already exists.");
  }
  // Two databases, no distributed transaction: undo the tenant if its first admin cannot be made.
  auth::FirstAdmin admin;
  try {
    admin = auth_.create_first_admin(minter_.mint(t.id), in.admin_email, in.admin_password);
  } catch (...) {
    store_.delete_tenant(t.id);
    throw;
  }
  nlohmann::json out = to_json(t);
  out["admin"] = std::move(admin.admin);
  out["api_key"] = std::move(admin.api_key);
  log::info("tenant created", {{"tenant_id", t.id}, {"slug", t.slug}});
  return out;
}

Tenant TenantService::get_tenant(std::string_view id_or_slug) {
  auto t = plausible_tenant_key(id_or_slug) ? store_.find_tenant(id_or_slug) : std::nullopt;
  if (!t) throw Error(Code::kNotFound, "No tenant has the id or slug '" + std::string(id_or_slug) + "'.");
  return *t;
}

Tenant TenantService::update_tenant(std::string_view id_or_slug, const TenantPatch& patch) {
  Tenant t = get_tenant(id_or_slug);
  if (patch.plan) check_plan_exists(*patch.plan, "plan");
  TenantPatch merged = patch;
  if (patch.settings) {
    // settings is a JSON merge patch (RFC 7396): given keys are set, null removes a key, others stay.
    merged.settings = t.settings;
    merged.settings->merge_patch(*patch.settings);
  }
  auto updated = store_.update_tenant(t.id, merged);
  if (!updated) throw Error(Code::kNotFound, "The tenant was deleted meanwhile.");
  auth_.tenant_changed(t.id);
  return *updated;
}

Tenant TenantService::set_status(std::string_view id_or_slug, const std::string& status) {
  TenantPatch patch;
  patch.status = status;
  Tenant t = update_tenant(id_or_slug, patch);
  log::info("tenant status changed", {{"tenant_id", t.id}, {"status", status}});
  return t;
}

void TenantService::delete_tenant(std::string_view id_or_slug) {
  Tenant t = get_tenant(id_or_slug);
  // Purge module data first: a crash midway leaves the tenant row, so the delete can be retried.
  purge_(minter_.mint(t.id));
  store_.delete_tenant(t.id);
  auth_.tenant_changed(t.id);
  log::info("tenant deleted", {{"tenant_id", t.id}, {"slug", t.slug}});
}

nlohmann::json TenantService::usage(std::string_view id_or_slug, const std::string& from, const std::string& to) {
  const Tenant t = get_tenant(id_or_slug);
  nlohmann::json days = nlohmann::json::array(), keys = nlohmann::json::array();
  int64_t total = 0;
  for (const auto& [day, calls] : store_.usage_by_day(t.id, from, to)) {
    days.push_back({{"day", day}, {"calls", calls}});
    total += calls;
  }
  for (const auto& [key, calls] : store_.usage_by_key(t.id, from, to))
    keys.push_back({{"api_key_id", key.empty() ? nlohmann::json(nullptr) : nlohmann::json(key)}, {"calls", calls}});
  return {{"tenant_id", t.id}, {"from", from}, {"to", to}, {"total", total}, {"days", days}, {"api_keys", keys}};
}

Plan TenantService::create_plan(const NewPlan& in) {
  std::vector<FieldError> errors;
  if (auto why = plan_key_problem(in.key)) errors.push_back({"key", *why});
  for (const auto& m : in.modules)
    if (std::find(all_modules().begin(), all_modules().end(), m) == all_modules().end())
      errors.push_back({"modules", "unknown module '" + m + "'"});
  if (!errors.empty()) throw Error::validation(std::move(errors));
  Plan p;
  p.id = new_uuid_v7();
  p.key = in.key;
  p.name = in.name;
  p.rate_limit_per_minute = in.rate_limit_per_minute;
  p.max_users = in.max_users;
  p.max_api_keys = in.max_api_keys;
  p.modules = in.modules;
  p.created_at = p.updated_at = format_rfc3339(Clock::now());
  try {
    store_.insert_plan(p);
  } catch (const db::UniqueViolation&) {
    throw Error(Code::kConflict, "A plan with the key '" + in.key + "' already exists.");
  }
  return p;
}

Plan TenantService::update_plan(std::string_view id_or_key, const PlanPatch& patch) {
  auto p = store_.find_plan(id_or_key);
  if (!p) throw Error(Code::kNotFound, "No plan has the id or key '" + std::string(id_or_key) + "'.");
  if (patch.modules)
    for (const auto& m : *patch.modules)
      if (std::find(all_modules().begin(), all_modules().end(), m) == all_modules().end())
        throw Error::validation({{"modules", "unknown module '" + m + "'"}});
  auto updated = store_.update_plan(p->id, patch);
  if (!updated) throw Error(Code::kNotFound, "The plan was deleted meanwhile.");
  auth_.tenant_changed("");  // every tenant on this plan sees the new quotas
  return *updated;
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
  auto t = store_.find_tenant(id_or_slug);
  if (!t) return std::nullopt;
  auto p = store_.find_plan(t->plan);
  return TenantInfo{std::move(*t), p.value_or(Plan{})};
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
