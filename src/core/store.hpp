// Core's SQL, and nowhere else: tenants, plans and superadmins in cdx_db. Blocking; call from workers.
// These are platform tables, so every method here is a superadmin path (no TenantScope).
//   auto tenant = store.find_tenant("acme");
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/model.hpp"
#include "db/database.hpp"
#include "kit/usage_meter.hpp"

namespace cdx::core {

struct TenantPatch {
  std::optional<std::string> name, plan, status;
  std::optional<nlohmann::json> settings;
};

struct PlanPatch {
  std::optional<std::string> name;
  std::optional<int64_t> rate_limit_per_minute, max_users, max_api_keys;
  std::optional<std::vector<std::string>> modules;
};

class Store {
 public:
  explicit Store(std::shared_ptr<db::Database> db) : db_(std::move(db)) {}

  std::optional<Tenant> find_tenant(std::string_view id_or_slug);
  void insert_tenant(const Tenant& t);  // UniqueViolation on a taken slug
  std::vector<Tenant> list_tenants(const TenantFilter& f);  // newest first, up to f.limit + 1
  std::optional<Tenant> update_tenant(const std::string& id, const TenantPatch& patch);
  bool delete_tenant(const std::string& id);

  std::vector<Plan> list_plans();
  std::optional<Plan> find_plan(std::string_view id_or_key);
  void insert_plan(const Plan& p);  // UniqueViolation on a taken key
  std::optional<Plan> update_plan(const std::string& id, const PlanPatch& patch);

  // Adds calls to the daily counters of tenants that still exist; one transaction.
  void add_usage(const std::vector<kit::Usage>& usage);
  // Days [from, to] (YYYY-MM-DD) with calls: per day, and per API key ("" = without a key).
  std::vector<std::pair<std::string, int64_t>> usage_by_day(const std::string& tenant_id, const std::string& from,
                                                            const std::string& to);
  std::vector<std::pair<std::string, int64_t>> usage_by_key(const std::string& tenant_id, const std::string& from,
                                                            const std::string& to);

  int64_t count_superadmins();
  void insert_superadmin(const Superadmin& s);
  std::optional<Superadmin> find_superadmin_by_username(std::string_view username);
  std::optional<Superadmin> find_superadmin(std::string_view id);
  void touch_superadmin_login(const std::string& id);

 private:
  std::shared_ptr<db::Database> db_;
};

}  // namespace cdx::core
