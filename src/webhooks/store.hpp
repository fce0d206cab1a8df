// The webhooks' SQL in cdx_db: endpoints (tenant rows, row-level security on PostgreSQL, secrets sealed),
// deliveries and their attempts (a log beside the event log: platform tables read with the tenant's id
// bound, so the sender can claim due deliveries across tenants).
//   Store store(db);
//   auto page = db->read(scope, [&](db::Tx& tx) { return store.list_endpoints(tx, scope, 50, cursor); });
#pragma once
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "db/database.hpp"

namespace cdx::webhooks {

struct EndpointRow {
  std::string id, tenant_id, url, description;
  std::vector<std::string> event_types;
  bool enabled = true;
  std::string disabled_reason;
  std::string secret, secret_kek;                    // sealed
  std::string previous_secret, previous_secret_kek;  // sealed; empty when none
  int64_t previous_until = 0;                        // unix ms the previous secret signs until
  std::optional<int64_t> failing_since;              // unix ms of the first failure since the last success
  std::string created_at, updated_at;
};
nlohmann::json to_json(const EndpointRow& e);

// One delivery as the sender sends it.
struct Claimed {
  std::string id, tenant_id, endpoint_id, msg_id, payload;
  int64_t tries = 0;
  int64_t lease = 0;  // unix ms: the claim's lease_until, the fence its outcome is recorded with
};

// A finished attempt, as the sender records it.
struct Attempt {
  std::string delivery_id, tenant_id, endpoint_id, attempted_at;
  int status_code = 0;
  int64_t latency_ms = 0;
  std::string response, error;
  // What follows: pending again at next_attempt_at (unix ms), succeeded, or failed.
  std::string status;
  int64_t next_attempt_at = 0;
  int64_t tries = 0;
  int64_t lease = 0;  // the claim's lease: recorded only while the delivery still holds it
};

// What a claim may take: free slots overall, and the bounds per endpoint and per tenant with what this
// sender already holds of each.
struct Room {
  int total = 0;
  int per_endpoint = 0, per_tenant = 0;
  std::map<std::string, int> endpoint_load, tenant_load;
};

struct NewDelivery {
  std::string tenant_id, endpoint_id, msg_id, event_id, event_type, payload;
};

class Store {
 public:
  // Endpoints: in the tenant's transaction.
  void insert_endpoint(db::Tx& tx, const EndpointRow& e);
  std::optional<EndpointRow> find_endpoint(db::Tx& tx, const std::string& tenant_id, const std::string& id);
  std::vector<EndpointRow> list_endpoints(db::Tx& tx, const std::string& tenant_id, int limit,
                                          const std::optional<std::string>& before_id);
  void update_endpoint(db::Tx& tx, const EndpointRow& e);
  bool delete_endpoint(db::Tx& tx, const std::string& tenant_id, const std::string& id);
  // Enabled endpoints of a tenant (fan-out): an endpoint gets the events that happened since it was made.
  struct Route {
    std::string id, created_at;
    std::vector<std::string> event_types;
  };
  std::vector<Route> routes(db::Tx& tx, const std::string& tenant_id);
  size_t routes_read() const { return routes_read_.load(std::memory_order_relaxed); }  // calls (tests)
  void set_failing(db::Tx& tx, const std::string& tenant_id, const std::string& id,
                   std::optional<int64_t> since);
  void disable(db::Tx& tx, const std::string& tenant_id, const std::string& id, const std::string& reason);

  // Deliveries.
  // Answers the new deliveries' ids, in the order of rows.
  std::vector<std::string> insert_deliveries(db::Tx& tx, const std::vector<NewDelivery>& rows,
                                             int64_t due_ms);
  // Frees every lease: due now (a single-process database after a crash: nothing is in flight).
  void release_leases(db::Tx& tx, int64_t now_ms);
  // Due deliveries (pending, next_attempt_at passed) that fit the room, leased until lease_ms: a claim
  // moves next_attempt_at to the lease's end, so a delivery whose attempt is never recorded (a crash) is due
  // again then. PostgreSQL: FOR UPDATE SKIP LOCKED, so replicas never claim the same delivery at once.
  // more (when given): the candidates were cut off by the claim's limit, so more may be due now.
  std::vector<Claimed> claim(db::Tx& tx, int64_t now_ms, int64_t lease_ms, const Room& room,
                             bool* more = nullptr);
  // When the earliest pending delivery (after `after`, when given) is due, unix ms: the sender sleeps until
  // then. A read of one index row, so an idle sender takes no write lock (SQLite has one).
  std::optional<int64_t> next_due(db::Tx& tx, std::optional<int64_t> after = std::nullopt);
  // Records finished attempts, each only if its delivery still holds the attempt's lease (not deleted,
  // replayed, or claimed again after the lease ran out): answers how many were recorded.
  // recorded (when given): which ones were.
  size_t record(db::Tx& tx, const std::vector<Attempt>& attempts, std::vector<bool>* recorded = nullptr);
  void fail_undeliverable(db::Tx& tx, const Claimed& d, const std::string& why);
  // Replay: pending again now with a fresh schedule (kNow), or, while an attempt of it is in flight, once
  // that attempt is recorded (kAfterTheAttemptInFlight: its outcome stands, and a new attempt follows).
  enum class Requeue { kNow, kAfterTheAttemptInFlight, kNotFound };
  Requeue requeue(db::Tx& tx, const std::string& tenant_id, const std::string& id, int64_t now_ms);
  // Deletes finished deliveries (succeeded, failed) made before cutoff_ms, and their attempts: at most
  // limit deliveries a call. Answers how many deliveries went.
  size_t prune(db::Tx& tx, int64_t cutoff_ms, int limit);
  // The delivery log of an endpoint, newest first, with each delivery's attempts: limit + 1 rows at most
  // (the extra one tells that more exist).
  nlohmann::json list_deliveries(db::Tx& tx, const std::string& tenant_id, const std::string& endpoint_id,
                                 int limit, const std::optional<std::string>& before_id,
                                 const std::optional<std::string>& status);
  std::optional<nlohmann::json> find_delivery(db::Tx& tx, const std::string& tenant_id,
                                              const std::string& id);
  void purge_tenant(db::Tx& tx, const std::string& tenant_id);

 private:
  std::atomic<size_t> routes_read_{0};
};

// Migration 7 of cdx_db.
db::Migration migration(int version);

}  // namespace cdx::webhooks
