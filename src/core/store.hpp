// Core's hand-written SQL: API usage, superadmins, and what the tenant and plan resources' hooks ask (the
// kit writes their rows). Platform tables: every method is a superadmin path (no TenantScope). Blocking.
//   store.add_usage(batch);
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/model.hpp"
#include "db/database.hpp"
#include "kit/usage_meter.hpp"

namespace cdx::core {

class Store {
 public:
  explicit Store(std::shared_ptr<db::Database> db) : db_(std::move(db)) {}

  // For the tenant resource's hooks, inside the kit's transaction.
  static bool plan_exists(db::Tx& tx, std::string_view key);
  static void delete_usage(db::Tx& tx, const std::string& tenant_id);

  // Adds calls to the daily counters of tenants that still exist; one transaction.
  void add_usage(const std::vector<kit::Usage>& usage);
  // Days [from, to] (YYYY-MM-DD) with calls: per day, and per API key ("" = without a key).
  std::vector<std::pair<std::string, int64_t>> usage_by_day(const std::string& tenant_id,
                                                            const std::string& from, const std::string& to);
  std::vector<std::pair<std::string, int64_t>> usage_by_key(const std::string& tenant_id,
                                                            const std::string& from, const std::string& to);

  int64_t count_superadmins();
  void insert_superadmin(const Superadmin& s);
  std::optional<Superadmin> find_superadmin_by_username(std::string_view username);
  std::optional<Superadmin> find_superadmin(std::string_view id);
  void touch_superadmin_login(const std::string& id);

 private:
  std::shared_ptr<db::Database> db_;
};

}  // namespace cdx::core
