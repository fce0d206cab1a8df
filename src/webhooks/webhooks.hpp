// Webhooks to tenants' apps (Standard Webhooks): endpoints under /api/v1/webhooks, the fan-out of logged
// events into deliveries (in the event feed's cdx_db transaction), and the sender — its own threads and
// io_context — which claims due deliveries (FOR UPDATE SKIP LOCKED and a lease: replicas never claim the same
// delivery at once; after a crash a lease runs out and the delivery is sent again, at least once), signs and
// posts them within bounds per endpoint and per tenant, retries on the schedule, and
// disables endpoints that answer 410 or fail for days. Owned by core (core/module.hpp).
//   webhooks::Webhooks hooks(db, workers, minter, webhooks::Options::from(config), config);
//   hooks.mount(router);  hooks.start();   …   feed: hooks.fan_out(tx, batch);   …   hooks.stop();
#pragma once
#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/tenant_scope.hpp"
#include "common/worker_pool.hpp"
#include "db/database.hpp"
#include "webhooks/schedule.hpp"
#include "webhooks/store.hpp"

namespace cdx {
class KeyEncryption;
}
namespace cdx::http {
class Router;
}

namespace cdx::webhooks {

struct Options {
  bool allow_loopback = false;                         // webhooks_allow_loopback: local development and tests
  std::chrono::milliseconds timeout{15000};            // webhooks_timeout_ms: one attempt, all included
  RetrySchedule schedule = RetrySchedule::standard();  // webhooks_retry_schedule
  std::chrono::milliseconds disable_after{std::chrono::hours(24 * 5)};  // webhooks_disable_after (seconds)
  std::chrono::milliseconds rotation_overlap{std::chrono::hours(24)};   // the old secret keeps signing
  int max_in_flight = 512;                                              // attempts at once, overall
  int per_endpoint = 32;                                                // … to one endpoint
  int per_tenant = 128;                                                 // … to one tenant's endpoints
  // Finished deliveries and their attempts are kept this long (event_retention_days, as the event log).
  std::chrono::milliseconds retention{std::chrono::hours(24 * 30)};
  static Options from(const Config& config);
};

// An event of the platform log, as the fan-out takes it.
struct Event {
  int64_t seq = 0;
  std::string id, tenant_id, type, created_at;
  nlohmann::json data;
};

// exact names, prefixes ("crm.*") or everything ("*").
bool type_matches(const std::vector<std::string>& patterns, std::string_view type);

// What a replay reads from the event log, in the log's grammar (core's EventFilter): a tenant, types (exact
// names or prefixes ending in '.'; empty: every type) and a time (created_at >= since).
struct LogQuery {
  std::string tenant_id;
  std::vector<std::string> types;
  std::string since;
};
// An endpoint's patterns in the log's grammar ("crm.*" is "crm."; "*" is every type: none).
std::vector<std::string> log_types(const std::vector<std::string>& patterns);

class Sender;

class Webhooks {
 public:
  // kek: the key that seals endpoint secrets, loaded when first needed (the server's `kek` setting).
  Webhooks(std::shared_ptr<db::Database> db, WorkerPool& workers, const ScopeMinter& minter, Options options,
           std::function<const KeyEncryption&()> kek);
  ~Webhooks();

  void mount(http::Router& router);
  void add_openapi_schemas(nlohmann::json& schemas) const;
  // Starts the sender. The fan-out is the caller's: a durable subscriber of the event log calling fan_out().
  void start();
  // Stops the sender's threads; it is destroyed with this object, so wake() and the endpoint operations of
  // worker jobs still running stay safe (they do nothing more to it).
  void stop();
  // Deletes finished deliveries (and their attempts) last changed before cutoff (unix ms): a bounded pass,
  // a few thousand deliveries at most, in short transactions. The sender calls it once a minute with
  // now - retention. Answers how many deliveries went.
  size_t prune(int64_t cutoff_ms);

  // One delivery row per (event, enabled endpoint of its tenant whose event types match). In the caller's
  // cdx_db write transaction (the one moving its cursor). Answers the rows inserted.
  size_t fan_out(db::Tx& tx, const std::vector<Event>& batch);
  // Deletes the tenant's endpoints, deliveries and attempts. Blocking.
  void purge_tenant(const db::TenantScope& scope);
  // New deliveries may be due: look now.
  void wake();
  // How many times the sender's database loop has run (0 before start): tests.
  size_t sender_steps() const;
  // Seals again under the current key encryption key every endpoint secret another key (kek_previous)
  // sealed: at start when a previous key is configured, and by `cdx admin rotate-kek`. Answers how many.
  size_t reseal_secrets();

  // The endpoint operations (blocking, on a worker). Throw cdx::Error (404 for another tenant's id).
  nlohmann::json create_endpoint(const db::TenantScope& scope, const nlohmann::json& fields);
  nlohmann::json get_endpoint(const db::TenantScope& scope, const std::string& id);
  nlohmann::json list_endpoints(const db::TenantScope& scope, int limit,
                                const std::optional<std::string>& cursor);
  nlohmann::json update_endpoint(const db::TenantScope& scope, const std::string& id,
                                 const nlohmann::json& fields);
  void delete_endpoint(const db::TenantScope& scope, const std::string& id);
  nlohmann::json rotate_secret(const db::TenantScope& scope, const std::string& id);
  nlohmann::json send_test(const db::TenantScope& scope, const std::string& id);
  nlohmann::json list_deliveries(const db::TenantScope& scope, const std::string& endpoint_id, int limit,
                                 const std::optional<std::string>& cursor,
                                 const std::optional<std::string>& status);
  nlohmann::json replay_delivery(const db::TenantScope& scope, const std::string& id);
  nlohmann::json replay_since(const db::TenantScope& scope, const std::string& endpoint_id,
                              const std::string& since);

  // The plain secrets that sign for an endpoint now: the current one, and the previous one during a rotation.
  struct Signing {
    std::string url;
    bool enabled = false;
    std::vector<std::string> keys;  // secret key bytes (decoded)
    std::optional<int64_t> failing_since;
  };
  std::optional<Signing> signing(const std::string& tenant_id, const std::string& endpoint_id);

  const Options& options() const { return options_; }
  db::Database& database() { return *db_; }
  Store& store() { return store_; }
  const ScopeMinter& minter() const { return minter_; }
  // Called when an endpoint is disabled (a 410, days of failures): tenant, endpoint, reason. Core writes
  // the webhook.endpoint.disabled event where it has an outbox.
  std::function<void(db::Tx&, const std::string&, const std::string&, const std::string&)> on_disabled;
  // The next `limit` events of the log after after_seq matching the query, oldest first (a shorter answer is
  // the log's end). Core's, which owns the log (webhooks cannot link it). Blocking.
  std::function<std::vector<Event>(int64_t after_seq, const LogQuery& query, int limit)> read_log;

 private:
  EndpointRow must_find(db::Tx& tx, const db::TenantScope& scope, const std::string& id);
  std::string seal_name(const std::string& id, bool previous) const;

  std::shared_ptr<db::Database> db_;
  WorkerPool& workers_;
  const ScopeMinter& minter_;
  Options options_;
  std::function<const KeyEncryption&()> kek_;
  Store store_;
  std::unique_ptr<Sender> sender_;
  friend class Sender;
};

}  // namespace cdx::webhooks
