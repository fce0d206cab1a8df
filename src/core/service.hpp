// Tenant lifecycle rules between core's routes and its store: creating a tenant with its first admin,
// status changes, deletion purging every module, plans, and superadmin credentials.
//   nlohmann::json created = service.create_tenant(input);   // blocking: run on a worker
#pragma once
#include <functional>
#include <optional>
#include <string>

#include "auth/api.hpp"
#include "core/api.hpp"
#include "core/store.hpp"

namespace cdx::core {

struct NewTenant {
  std::string name, slug;
  std::optional<std::string> plan;
  std::string admin_email;
  std::optional<std::string> admin_password;
  nlohmann::json settings = nlohmann::json::object();
  bool seeding = false;  // demo data: its well-known passwords skip the password policy
};

struct NewPlan {
  std::string key, name;
  int64_t rate_limit_per_minute = 6000, max_users = 100, max_api_keys = 20;
  std::vector<std::string> modules = all_modules();
};

using TenantPurger = std::function<void(const db::TenantScope&)>;

class TenantService final : public Api {
 public:
  TenantService(Store& store, auth::Api& auth, TenantPurger purge, const ScopeMinter& minter)
      : store_(store), auth_(auth), purge_(std::move(purge)), minter_(minter) {}

  nlohmann::json create_tenant(const NewTenant& in);
  Tenant get_tenant(std::string_view id_or_slug);  // 404 when absent
  std::vector<Tenant> list_tenants(const TenantFilter& f) { return store_.list_tenants(f); }
  Tenant update_tenant(std::string_view id_or_slug, const TenantPatch& patch);
  Tenant set_status(std::string_view id_or_slug, const std::string& status);
  void delete_tenant(std::string_view id_or_slug);

  std::vector<Plan> list_plans() { return store_.list_plans(); }
  Plan create_plan(const NewPlan& in);
  Plan update_plan(std::string_view id_or_key, const PlanPatch& patch);

  void record_usage(const std::vector<kit::Usage>& usage) { store_.add_usage(usage); }
  // GET /api/v1/tenants/{id}/usage: calls per day and per API key over [from, to] (YYYY-MM-DD, UTC).
  nlohmann::json usage(std::string_view id_or_slug, const std::string& from, const std::string& to);

  // Runs fn inside an existing tenant's scope: demo seeding only, a superadmin path by name.
  void seed_in_tenant(std::string_view tenant, const std::function<void(const db::TenantScope&)>& fn);
  // Adds a user to an existing tenant (demo seeding).
  void seed_user(std::string_view tenant, const std::string& email, const std::string& name, const std::string& role,
                 const std::string& password);
  // Creates a superadmin; false when the username is taken.
  bool create_superadmin(const std::string& username, const std::string& password);
  // Creates "user:password" when no superadmin exists yet; true when it created one.
  bool bootstrap_superadmin(const std::string& spec);

  // Api
  std::optional<TenantInfo> find_tenant(std::string_view id_or_slug) override;
  std::optional<SuperadminIdentity> verify_superadmin(std::string_view username, std::string_view password) override;
  std::optional<SuperadminIdentity> find_superadmin(std::string_view id) override;

  // Ids and slugs are short lower-case ASCII; anything else names no tenant and never reaches SQL or
  // another service.
  static bool plausible_tenant_key(std::string_view key) { return core::plausible_tenant_key(key); }

 private:
  void check_plan_exists(const std::string& plan, const char* field);
  Store& store_;
  auth::Api& auth_;
  TenantPurger purge_;
  const ScopeMinter& minter_;  // the operator's own: it creates and purges tenants
};

}  // namespace cdx::core
