// The tenant overview (GET /api/v1/tenants/{id}/overview): counters in cdx_db kept up to date by the
// durable event-log subscriber "aggregates", read with a few indexed rows, and rebuilt from the modules
// themselves by `cdx admin rebuild-aggregates`.
//   feed.add_durable("aggregates", [&](db::Tx* tx, const auto& batch) { aggregates.apply(*tx, batch); });
//   nlohmann::json o = aggregates.overview(tenant_id);   // blocking, on a worker
#pragma once
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/aggregate_store.hpp"
#include "db/database.hpp"

namespace cdx::core {

struct LoggedEvent;  // core/event_feed.hpp

namespace aggregates {

// Counter names (cdx_db.tenant_counters.name). Money counters carry the month and currency in the name:
// "deals.open_value:EUR", "deals.won:2026-12", "deals.won_value:2026-12:EUR".
inline constexpr const char* kUsers = "users";
inline constexpr const char* kApiKeys = "api_keys";
inline constexpr const char* kContacts = "contacts";
inline constexpr const char* kCompanies = "companies";
inline constexpr const char* kPublishedEntries = "entries.published";
inline constexpr const char* kMedia = "media";
inline constexpr const char* kOpenDeals = "deals.open";

using Deltas = std::map<std::string, int64_t>;

// What one event does, before the previous state of a deal is known: counter deltas, a deal's new state
// (every crm.deal.* event but deleted carries the whole row), a deal gone, or the whole tenant gone.
struct Effect {
  Deltas add;
  std::optional<DealState> deal;
  std::optional<std::string> deal_removed;
  bool tenant_deleted = false;
};

// The mapping of an event type and payload to its effect (docs/events.md, "Tenant overview"). Pure.
Effect effect_of(const std::string& type, const nlohmann::json& data);
// A deal's state as the overview counts it, from a deal row ({"id", "status", "amount", "currency",
// "closed_at"}); nullopt when the row lacks an id or status.
std::optional<DealState> deal_state_of(const nlohmann::json& deal);
// What a deal adds to the counters (sign = -1: what it takes away when it changes or goes).
void add_deal(const DealState& d, int sign, Deltas& out);
// The hour bucket of an RFC 3339 time: "2026-12-05T09".
std::string hour_of(const std::string& rfc3339);

}  // namespace aggregates

// components/schemas TenantOverview (overview_routes.cpp).
void add_overview_schema(nlohmann::json& schemas);

class Aggregates {
 public:
  static constexpr const char* kSubscriber = "aggregates";

  explicit Aggregates(std::shared_ptr<db::Database> db) : store_(std::move(db)) {}

  // The subscriber: applies a batch inside the transaction that moves the cursor (EventFeed holds the
  // cursor's row locked meanwhile, so a rebuild waits for it or comes first).
  void apply(db::Tx& tx, const std::vector<LoggedEvent>& batch);
  // The overview of an existing tenant (the caller resolved it). Blocking.
  nlohmann::json overview(const std::string& tenant_id);
  // The platform's (GET /api/v1/overview): tenants by status, API calls, events per hour. Blocking.
  nlohmann::json platform_overview();
  // Replaces every tenant's counters with what the modules report (tenant id -> each module's
  // Module::aggregate_counts: numbers by counter name, added up, and "deals": each deal's state), the event
  // buckets with a recount of the log, and moves the subscriber's cursor to the log's end, which it
  // answers. Blocking.
  int64_t rebuild(const std::map<std::string, std::vector<nlohmann::json>>& reports);

  AggregateStore& store() { return store_; }

 private:
  AggregateStore store_;
};

}  // namespace cdx::core
