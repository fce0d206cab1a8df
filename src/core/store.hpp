// Core's hand-written SQL: API usage, superadmins, and what the tenant and plan resources' hooks ask (the
// kit writes their rows). Platform tables: every method is a superadmin path (no TenantScope). Blocking.
//   store.add_usage(batch);
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/event_feed.hpp"
#include "core/model.hpp"
#include "db/database.hpp"
#include "db/outbox.hpp"
#include "kit/usage_meter.hpp"

namespace cdx::core {

// A read of the platform event log: newest first, before a sequence number.
struct EventQuery {
  std::optional<std::string> tenant_id;     // none: every tenant's (the SUPERADMIN)
  std::vector<std::string> types;           // exact names, or prefixes ending in '.' ("crm."); any of them
  std::optional<std::string> since, until;  // RFC 3339 UTC, on created_at: [since, until)
  std::optional<int64_t> before_seq;
  int limit = 50;
};

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

  // Events moved from the modules' outboxes into the event log, in one transaction, in the order given.
  // An event already there (its id) is skipped: moving is at least once. On PostgreSQL the transaction
  // holds an advisory lock, so sequence order is commit order and a reader's cursor never skips a row
  // that commits late.
  void record_events(const std::vector<db::OutboxEvent>& events);
  // Up to q.limit + 1 events as JSON rows (for a next cursor).
  nlohmann::json list_events(const EventQuery& q);

  // The event log's reading and its subscribers' cursors, inside the caller's transaction (EventFeed).
  // The next `limit` events after seq that match filter, oldest first: a shorter answer is the log's end.
  static std::vector<LoggedEvent> events_after(db::Tx& tx, int64_t seq, const EventFilter& filter, int limit);
  static bool any_event_after(db::Tx& tx, int64_t seq);
  static int64_t last_seq(db::Tx& tx);
  // Creates the cursor at the log's end (or at 0) unless it exists (another replica's race is a no-op).
  static void ensure_cursor(db::Tx& tx, const std::string& name, bool at_end);
  // The cursor's position, nullopt when absent; with `lock` on PostgreSQL the row is taken FOR UPDATE SKIP
  // LOCKED, and nullopt also means another replica holds it.
  static std::optional<int64_t> cursor(db::Tx& tx, const std::string& name, bool lock = false);
  // Moves the cursor to seq and clears its error; never backwards.
  static void move_cursor(db::Tx& tx, const std::string& name, int64_t seq);
  static void cursor_failed(db::Tx& tx, const std::string& name, const std::string& error);

  // Deletes events created before cutoff (RFC 3339), up to limit rows, never one a subscriber of `cursors`
  // (the ones this build runs; a cursor nothing moves any more does not hold retention) has not handled yet.
  // Answers how many it deleted.
  int64_t prune_events(const std::string& cutoff, int64_t limit, const std::vector<std::string>& cursors);

  int64_t count_superadmins();
  void insert_superadmin(const Superadmin& s);
  std::optional<Superadmin> find_superadmin_by_username(std::string_view username);
  std::optional<Superadmin> find_superadmin(std::string_view id);
  void touch_superadmin_login(const std::string& id);

 private:
  std::shared_ptr<db::Database> db_;
};

}  // namespace cdx::core
