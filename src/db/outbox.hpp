// Transactional outbox: a module writes its domain events into <schema>.outbox in the same transaction as
// the change they describe; an OutboxRelay delivers them afterwards, oldest first, at least once, to
// in-process subscribers.
//   migrations.push_back(db::Outbox::migration(4, "crm_db"));                 // creates crm_db.outbox
//   db->write(scope, [&](db::Tx& tx) { …; outbox.append(tx, scope, "crm.deal.won", {{"deal", j}}); });
//   relay.add_source(db);  relay.subscribe("crm.", on_event);  relay.poll();  // e.g. once a second
#pragma once
#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "db/database.hpp"

namespace cdx::db {

struct OutboxEvent {
  int64_t seq = 0;         // delivery order inside one schema's outbox
  std::string id;          // UUIDv7, stable across redeliveries: consumers deduplicate on it
  std::string schema;      // the outbox it came from ("crm_db")
  std::string tenant_id;
  std::string type;        // "crm.deal.won"
  nlohmann::json payload;  // an object
  std::string created_at;  // RFC 3339
};

nlohmann::json to_json(const OutboxEvent& e);  // {"id","type","tenant_id","data","created_at"}

// Writes and reads one schema's outbox. The table is a platform table (no row-level security): the relay
// reads every tenant's pending events, so every tenant query here filters on tenant_id itself.
class Outbox {
 public:
  explicit Outbox(std::string schema) : schema_(std::move(schema)) {}

  // The migration that creates <schema>.outbox (the sequence column differs between the databases).
  static Migration migration(int version, const std::string& schema);

  // Appends one event inside the caller's transaction: it commits or rolls back with the change.
  OutboxEvent append(Tx& tx, const TenantScope& scope, std::string_view type, nlohmann::json payload) const {
    return append(tx, scope.tenant_id(), type, std::move(payload));
  }
  // The same for a platform table's change: the tenant it concerns ("" for none, a platform-wide event).
  OutboxEvent append(Tx& tx, const std::string& tenant_id, std::string_view type, nlohmann::json payload) const;

  // The tenant's events, newest first, up to limit + 1 (for a next cursor), optionally of one type or
  // type prefix (a type ending in a dot, "crm.deal."), and older than before_seq.
  std::vector<OutboxEvent> list(Tx& tx, const TenantScope& scope, const std::optional<std::string>& type,
                                int limit, std::optional<int64_t> before_seq) const;

  // Deletes the tenant's events (tenant purge).
  void purge_tenant(Tx& tx, const TenantScope& scope) const;

  const std::string& schema() const { return schema_; }

 private:
  std::string schema_;
};

// Moves pending outbox rows of its sources to the sink (the platform event log) a batch at a time, and
// delivers them to in-process subscribers, in seq order per source, at least once: a row is marked delivered
// only after the sink took its batch and every matching subscriber returned. A sink that throws leaves the
// batch for the next poll. A subscriber that throws stops its source's delivery there (order is kept) and
// the row is retried on the next poll; after kMaxAttempts failures it is parked (marked delivered with its
// last error) so one poison event cannot block the rest forever. On PostgreSQL a batch is claimed (FOR UPDATE
// SKIP LOCKED) for the length of its move, so several processes polling one outbox move each row once.
class OutboxRelay {
 public:
  using Subscriber = std::function<void(const OutboxEvent&)>;
  using Sink = std::function<void(const std::vector<OutboxEvent>&)>;
  static constexpr int kMaxAttempts = 5;
  static constexpr int kBatch = 1000;
  static constexpr int kMaxBatchesPerPoll = 100;
  // Delivered rows are kept this long (GET …/events reads them), then pruned.
  static constexpr int64_t kRetentionSeconds = 7 * 24 * 3600;

  void add_source(std::shared_ptr<Database> db);
  // prefix "" matches every type; "crm." every CRM event; an exact type matches itself.
  void subscribe(std::string prefix, Subscriber fn);
  // Where every batch goes first (set before the first poll).
  void set_sink(Sink sink) { sink_ = std::move(sink); }

  // Delivers what is pending now; answers how many rows were delivered. Blocking; call from one
  // background thread (it is serialised internally, so a second caller waits).
  size_t poll();

  int64_t delivered_total() const { return delivered_.load(std::memory_order_relaxed); }
  int64_t failed_total() const { return failed_.load(std::memory_order_relaxed); }

 private:
  size_t poll_source(Database& db);
  // One batch in tx (claimed on PostgreSQL): to the sink and the subscribers, then marked. Answers how many
  // rows it read and how many it marked delivered; stopped when a subscriber failed.
  struct Moved {
    size_t read = 0, delivered = 0;
    bool stopped = false;
  };
  Moved move_batch(Database& db, Tx& tx, bool claim, std::vector<std::function<void(Tx&)>>* later = nullptr);
  void prune(Database& db);

  std::mutex poll_mu_;  // one poll at a time
  std::mutex mu_;       // sources and subscribers
  std::vector<std::shared_ptr<Database>> sources_;
  std::vector<std::pair<std::string, Subscriber>> subscribers_;
  Sink sink_;
  int64_t polls_ = 0;
  std::atomic<int64_t> delivered_{0};
  std::atomic<int64_t> failed_{0};
};

}  // namespace cdx::db
