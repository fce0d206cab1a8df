// Tenant lifecycle rules around the kit's tenant and plan resources: creating a tenant with its first
// admin (in auth, outside core's transaction), status changes, deletion purging every module, and
// superadmin credentials.
//   nlohmann::json created = service.create_tenant(fields, "ops@acme.com", std::nullopt);   // on a worker
#pragma once
#include <functional>
#include <optional>
#include <string>

#include "auth/api.hpp"
#include "core/api.hpp"
#include "core/store.hpp"
#include "kit/kit.hpp"

namespace cdx::core {

// A tenant made by code (demo seeding): its well-known passwords skip the password policy.
struct NewTenant {
  std::string name, slug;
  std::optional<std::string> plan;
  std::string admin_email;
  std::optional<std::string> admin_password;
  nlohmann::json settings = nlohmann::json::object();
};

using TenantPurger = std::function<void(const db::TenantScope&)>;

class TenantService final : public Api {
 public:
  TenantService(db::Database& db, Store& store, const kit::Kit& kit, const kit::Resource& tenants,
                const kit::Resource& plans, auth::Api& auth, TenantPurger purge, const ScopeMinter& minter)
      : db_(db),
        store_(store),
        kit_(kit),
        tenants_(tenants),
        plans_(plans),
        auth_(auth),
        purge_(std::move(purge)),
        minter_(minter) {}

  // fields: the tenant resource's, read by the kit (kit::read_fields). The row is committed first, then the
  // first admin is made; the row is deleted again when that fails.
  nlohmann::json create_tenant(const nlohmann::json& fields, const std::string& admin_email,
                               const std::optional<std::string>& admin_password, const kit::Actor& actor);
  nlohmann::json create_tenant(const NewTenant& in);
  Tenant get_tenant(std::string_view id_or_slug);  // 404 when absent
  Tenant set_status(std::string_view id_or_slug, const std::string& status, const kit::Actor& actor);
  // Deletes the tenant's row and writes tenant.deleted in the same transaction: the tenant answers 404 at
  // once; its data in every module is purged by the event log's "purge" subscriber (purge_deleted).
  void delete_tenant(std::string_view id_or_slug, const kit::Actor& actor);
  // Purges a deleted tenant's rows in every module. Idempotent; throws when a module could not purge (the
  // subscriber retries).
  void purge_deleted(const std::string& tenant_id) { purge_(minter_.mint(tenant_id)); }
  // Called after events were recorded in the log (wakes its subscribers).
  void on_recorded(std::function<void()> fn) { on_recorded_ = std::move(fn); }
  // The tenant's (or, with "", every tenant's) cached credentials must be checked again.
  void tenant_changed(const std::string& tenant_id) { auth_.tenant_changed(tenant_id); }

  void record_usage(const std::vector<kit::Usage>& usage) { store_.add_usage(usage); }
  void record_events(const std::vector<db::OutboxEvent>& events) override {
    store_.record_events(events);
    if (on_recorded_ && !events.empty()) on_recorded_();
  }
  nlohmann::json list_events(const EventQuery& q) { return store_.list_events(q); }
  // GET /api/v1/tenants/{id}/usage: calls per day and per API key over [from, to] (YYYY-MM-DD, UTC).
  nlohmann::json usage(std::string_view id_or_slug, const std::string& from, const std::string& to);

  // Runs fn inside an existing tenant's scope: demo seeding only, a superadmin path by name.
  void seed_in_tenant(std::string_view tenant, const std::function<void(const db::TenantScope&)>& fn);
  // Adds a user to an existing tenant (demo seeding).
  void seed_user(std::string_view tenant, const std::string& email, const std::string& name,
                 const std::string& role, const std::string& password);
  // Creates a superadmin; false when the username is taken.
  bool create_superadmin(const std::string& username, const std::string& password);
  // Creates "user:password" when no superadmin exists yet; true when it created one.
  bool bootstrap_superadmin(const std::string& spec);

  // Api
  std::optional<TenantInfo> find_tenant(std::string_view id_or_slug) override;
  std::optional<SuperadminIdentity> verify_superadmin(std::string_view username,
                                                      std::string_view password) override;
  std::optional<SuperadminIdentity> find_superadmin(std::string_view id) override;

  // Ids and slugs are short lower-case ASCII; anything else names no tenant and never reaches SQL or
  // another service.
  static bool plausible_tenant_key(std::string_view key) { return core::plausible_tenant_key(key); }

 private:
  kit::Caller caller(const kit::Actor& actor) const { return {db::TenantScope::none(), actor, std::nullopt}; }

  db::Database& db_;
  Store& store_;
  const kit::Kit& kit_;
  const kit::Resource& tenants_;
  const kit::Resource& plans_;
  auth::Api& auth_;
  TenantPurger purge_;
  std::function<void()> on_recorded_;
  const ScopeMinter& minter_;  // the operator's own: it creates and purges tenants
};

}  // namespace cdx::core
