// Transactional outbox: a module writes its domain events into <schema>.outbox in the same transaction as
// the change they describe; an OutboxRelay moves them afterwards, oldest first, at least once, into a sink
// (the platform event log, where everything that reacts to events subscribes).
//   migrations.push_back(db::Outbox::migration(4, "crm_db"));                 // creates crm_db.outbox
//   db->write(scope, [&](db::Tx& tx) { …; outbox.append(tx, scope, "crm.deal.won", {{"deal", j}}); });
//   relay.add_source(db);  relay.set_sink(record);  relay.poll();  // on each commit that wrote events
#pragma once
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
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
  int64_t seq = 0;     // delivery order inside one schema's outbox
  std::string id;      // UUIDv7, stable across redeliveries: consumers deduplicate on it
  std::string schema;  // the outbox it came from ("crm_db")
  std::string tenant_id;
  std::string type;        // "crm.deal.won"
  nlohmann::json payload;  // an object, from Outbox::append and Outbox::list; null from the relay
  std::string created_at;  // RFC 3339
  // The payload as the outbox stores it (compact JSON text), on events read from an outbox: the event log
  // records it as it is, without building and dumping the object again. Empty: `payload` is the payload.
  std::string payload_text;
};

nlohmann::json to_json(const OutboxEvent& e);  // {"id","type","tenant_id","data","created_at"}

// The payload's JSON text: payload_text, or payload dumped.
std::string payload_text_of(const OutboxEvent& e);

// What the event log keeps beside a payload, read from its JSON text without building it: the subject (the
// payload's own string "id", a deletion's, or else the string "id" of the first member object other than
// "actor", in the text's order, which is the parsed object's order for text nlohmann::json wrote) and the
// actor's JSON text. nullopt when the text is not one
// JSON object or holds an escape in a member name or in the id (then parse it). The views point into `text`.
struct PayloadFacts {
  std::optional<std::string_view> subject;
  std::optional<std::string_view> actor;
};
std::optional<PayloadFacts> scan_payload(std::string_view text);

// Writes and reads one schema's outbox. The table is a platform table (no row-level security): the relay
// reads every tenant's pending events, so every tenant query here filters on tenant_id itself.
class Outbox {
 public:
  explicit Outbox(std::string schema) : schema_(std::move(schema)) {}

  // The migration that creates <schema>.outbox (the sequence column differs between the databases).
  static Migration migration(int version, const std::string& schema);
  // The migration after it that makes the pending index partial on PostgreSQL, (seq) WHERE delivered_at IS
  // NULL: marking a batch delivered then adds no index entries, and the claim reads it in seq order. SQLite
  // keeps (delivered_at, seq) (nothing to do there).
  static Migration pending_index_migration(int version, const std::string& schema);
  // The migration after that, on PostgreSQL: pending rows become <schema>.outbox_queue (seq), filled by a
  // trigger on every insert into the outbox, claimed from there and deleted when moved; delivered_at is
  // 'queued' from then on (it fences off relays of the version before). SQLite keeps marking delivered_at
  // (nothing to do there).
  static Migration queue_migration(int version, const std::string& schema);

  // Appends one event inside the caller's transaction: it commits or rolls back with the change.
  OutboxEvent append(Tx& tx, const TenantScope& scope, std::string_view type, nlohmann::json payload) const {
    return append(tx, scope.tenant_id(), type, std::move(payload));
  }
  // The same for a platform table's change: the tenant it concerns ("" for none, a platform-wide event).
  OutboxEvent append(Tx& tx, const std::string& tenant_id, std::string_view type,
                     nlohmann::json payload) const;
  // Marks tx as a transaction that wrote outbox rows, so its commit wakes the relay (the database's commit
  // hook). append() calls it; a caller that inserts rows into <schema>.outbox itself (a CSV import's bulk
  // insert) must call it too, or its events wait for the relay's fallback look.
  void mark_written(Tx& tx) const;

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

// Moves pending outbox rows of its sources to the sink (the platform event log) a batch at a time, in seq
// order per source, at least once: a batch is marked delivered only after the sink took it, and a sink that
// throws leaves the batch pending for the next poll (the log skips an event it already holds). The sink gets
// each payload as the outbox's text (payload_text), never parsed here. On PostgreSQL a batch is claimed from
// the outbox's queue (FOR UPDATE SKIP LOCKED) for the length of its move and deleted from it in the same
// transaction, so several processes polling one outbox move each row once.
class OutboxRelay {
 public:
  using Sink = std::function<void(const std::vector<OutboxEvent>&)>;
  // Rows per batch: one read, one insert into the log, one mark. 5 000 rows of a few KiB is some 10 MiB.
  static constexpr int kBatch = 5000;
  static constexpr int kMaxBatchesPerPoll = 20;
  // Delivered rows are kept this long (GET …/events reads them), then pruned by the first poll after each
  // prune_every (polls come on every commit that wrote events: many a second under load, few when idle).
  static constexpr int64_t kRetentionSeconds = 7 * 24 * 3600;
  static constexpr std::chrono::seconds kPruneEvery{60};

  explicit OutboxRelay(std::chrono::milliseconds prune_every = kPruneEvery) : prune_every_(prune_every) {}

  void add_source(std::shared_ptr<Database> db);
  // Where every batch goes (set before the first poll).
  void set_sink(Sink sink) { sink_ = std::move(sink); }

  // Moves what is pending now; answers how many rows were moved. Blocking; call from one background thread
  // (it is serialised internally, so a second caller waits).
  size_t poll();

  int64_t delivered_total() const { return delivered_.load(std::memory_order_relaxed); }

 private:
  // One source's pending rows, a batch at a time; `moved` counts the rows moved (and marked) so far, also
  // when a batch fails and this throws.
  void poll_claimed(Database& db, size_t& moved);
  void poll_sqlite(Database& db, size_t& moved);
  // SQLite's pending rows after seq `after`, oldest first, their payloads as text.
  std::vector<OutboxEvent> read_batch(Database& db, Tx& tx, int64_t after);
  void prune(Database& db);

  std::mutex poll_mu_;  // one poll at a time
  std::mutex mu_;       // sources
  std::vector<std::shared_ptr<Database>> sources_;
  Sink sink_;
  const std::chrono::milliseconds prune_every_;
  std::optional<std::chrono::steady_clock::time_point> last_prune_;  // under poll_mu_
  std::atomic<int64_t> delivered_{0};
};

}  // namespace cdx::db
