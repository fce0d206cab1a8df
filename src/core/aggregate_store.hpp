// The SQL of the tenant overview's counters in cdx_db: tenant_counters (a named number per tenant),
// aggregate_deals (each deal's last counted state, so a change or delete takes back what it added) and
// event_hours (events per tenant and hour). Platform tables: every method names its tenant. Blocking.
//   store.add_counters(tx, tenant_id, {{"contacts", 1}}, now);
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "db/database.hpp"

namespace cdx::core {

// A deal as the overview counts it.
struct DealState {
  std::string id;
  std::string status;             // open | won | lost
  std::optional<int64_t> amount;  // minor units of currency
  std::string currency;           // "" when none
  std::string closed_at;          // RFC 3339, "" while open
  bool operator==(const DealState&) const = default;
};

class AggregateStore {
 public:
  // The tenant_id of the platform's rows: every event's hour bucket, every API call's day (no tenant id is
  // "*").
  static constexpr const char* kPlatform = "*";

  explicit AggregateStore(std::shared_ptr<db::Database> db) : db_(std::move(db)) {}
  db::Database& database() { return *db_; }

  // ---- the subscriber, inside its transaction
  static std::set<std::string> existing_tenants(db::Tx& tx, const std::set<std::string>& ids);
  static std::optional<DealState> deal(db::Tx& tx, const std::string& tenant_id, const std::string& deal_id);
  static void put_deal(db::Tx& tx, const std::string& tenant_id, const DealState& d);
  static void delete_deal(db::Tx& tx, const std::string& tenant_id, const std::string& deal_id);
  static void add_counters(db::Tx& tx, const std::string& tenant_id,
                           const std::map<std::string, int64_t>& add, const std::string& now);
  static void add_hours(db::Tx& tx, const std::string& tenant_id,
                        const std::map<std::string, int64_t>& hours);
  // Buckets before `hour` are no longer read.
  static void prune_hours(db::Tx& tx, const std::string& tenant_id, const std::string& hour);
  static void delete_tenant(db::Tx& tx, const std::string& tenant_id);

  // ---- the overview's read: a few rows by primary key
  struct Counters {
    std::map<std::string, int64_t> values;
    std::string updated_at;  // the latest change, "" when none
    int64_t events = 0;      // in the hour buckets from `since_hour` on
    int64_t calls_today = 0, calls_window = 0;
  };
  Counters read(const std::string& tenant_id, const std::string& since_hour, const std::string& today,
                const std::string& window_from);

  struct Platform {
    std::map<std::string, int64_t> tenants;  // by status
    std::map<std::string, int64_t> hours;    // events per hour bucket from since_hour on
    int64_t calls_today = 0, calls_window = 0;
  };
  Platform read_platform(const std::string& since_hour, const std::string& today,
                         const std::string& window_from);

  // ---- the rebuild
  std::vector<std::string> tenant_ids();
  // In one transaction: every tenant's counters and deals replaced by `counters` and `deals` (a tenant
  // absent from both has none), event buckets recounted from the log since `since_hour`, and the cursor
  // moved to the log's end, which it answers.
  int64_t replace_all(const std::map<std::string, std::map<std::string, int64_t>>& counters,
                      const std::map<std::string, std::vector<DealState>>& deals,
                      const std::string& since_hour, const std::string& cursor_name, const std::string& now);

 private:
  std::shared_ptr<db::Database> db_;
};

}  // namespace cdx::core
