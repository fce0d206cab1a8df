// Subscribers of the platform event log (cdx_db.events), each on its own thread with its own cursor: a slow
// or failing subscriber delays only itself. Durable subscribers keep their cursor in cdx_db.event_cursors
// and see every event at least once across restarts; live ones start at the log's end and keep their cursor
// in memory (the SSE feed). New events are announced in process by notify() (core's store calls it after
// recording) and across processes by PostgreSQL LISTEN/NOTIFY on the channel "cdx_events"; a poll every
// second is the fallback.
//   feed.add_durable("webhooks", [&](db::Tx* tx, const std::vector<LoggedEvent>& batch) { … });
//   feed.add_live([&](const std::vector<LoggedEvent>& batch) { hub.publish(batch); });
//   feed.start();  …  feed.stop();
#pragma once
#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "db/database.hpp"

namespace cdx::core {

// One row of the event log.
struct LoggedEvent {
  int64_t seq = 0;
  std::string id, tenant_id, type, source, subject;  // subject may be empty; tenant_id "" for platform events
  nlohmann::json actor;                              // null when none
  nlohmann::json data;                               // an object
  std::string created_at;                            // RFC 3339 UTC
};

// The shape GET /api/v1/events answers for one event.
nlohmann::json to_json(const LoggedEvent& e);

// Which events a reader wants: a tenant (none: every tenant's) and types (exact names, or prefixes ending in
// '.'; empty: every type). Matches in memory what core::Store matches in SQL.
struct EventFilter {
  std::optional<std::string> tenant_id;
  std::vector<std::string> types;
  std::optional<std::string> since;  // created_at >= since (RFC 3339, the stored form): webhook replays
  bool matches(const LoggedEvent& e) const;
  bool matches_type(std::string_view type) const;  // the types only (a service.* message has no tenant)
};

class EventFeed {
 public:
  // tx: the cdx_db write transaction that also moves the cursor past the batch (handle's writes commit with
  // it), or nullptr for a subscriber registered with in_transaction = false (it works outside any cdx_db
  // transaction, e.g. calling other services, and the cursor moves in a short transaction after it returns).
  // Throwing leaves the cursor where it was; the batch comes again after a back-off (1 s doubling to 30 s).
  using Durable = std::function<void(db::Tx* tx, const std::vector<LoggedEvent>& batch)>;
  // Called with each batch of new events, in seq order, on the live thread. Must not block for long: copy
  // what you need and return.
  using Live = std::function<void(const std::vector<LoggedEvent>& batch)>;

  struct Options {
    bool in_transaction = true;
    int batch = 500;
    // Where a new durable cursor starts: at the log's current end (true) or at its beginning.
    bool start_at_end = true;
    // Called on the subscriber's thread after a batch was handled and its cursor moved (committed): wake
    // what the batch's writes feed (the webhooks' sender).
    std::function<void()> after_commit;
  };

  explicit EventFeed(std::shared_ptr<db::Database> db) : db_(std::move(db)) {}
  ~EventFeed();

  // Register before start().
  void add_durable(std::string name, Durable fn, Options options);
  void add_durable(std::string name, Durable fn) { add_durable(std::move(name), std::move(fn), Options{}); }
  void add_live(Live fn);

  void start();
  void stop();
  // New events may be in the log: wake every subscriber now.
  void notify();

  // The next `limit` events after seq that match filter, in seq order (Last-Event-ID replay, catch-up); a
  // shorter answer means the log's end. Blocking.
  std::vector<LoggedEvent> read_after(int64_t seq, const EventFilter& filter, int limit);
  // The highest seq in the log (0 when empty). Blocking.
  int64_t last_seq();
  // A durable subscriber's cursor (nullopt when it has none yet). Blocking.
  std::optional<int64_t> cursor(const std::string& name);
  // Runs every durable subscriber until it has caught up with the log's current end, on the calling thread
  // (tests). Blocking.
  void drain();
  // The durable subscribers' names (their cursors hold the log's retention).
  std::vector<std::string> durable_names() const;
  // Where each durable subscriber stands, as this process last saw it (for /metrics: no database read).
  struct SubscriberStats {
    std::string name;
    int64_t lag = 0;       // events in the log after its cursor
    bool failing = false;  // its last step threw (it is backing off)
  };
  std::vector<SubscriberStats> stats() const;

  // Reads events from a LoggedEvent row of "SELECT seq, id, tenant_id, type, source, subject, actor,
  // payload, created_at".
  static LoggedEvent from_row(const db::Row& r);
  static constexpr const char* kColumns =
      "seq, id, tenant_id, type, source, subject, actor, payload, created_at";

 private:
  struct Subscriber {
    std::string name;
    Durable fn;
    Options options;
    std::chrono::milliseconds backoff{0};
    std::atomic<int64_t> position{0};
    std::atomic<bool> failing{false};
    std::mutex mu;  // one step at a time (drain() may run beside the subscriber's thread)
  };
  void run(Subscriber& s);
  bool step(Subscriber& s);  // one batch; true when it may have more
  void ensure_cursors();
  void run_live(int64_t from);
  void listen();  // PostgreSQL: LISTEN cdx_events on its own connection

  std::shared_ptr<db::Database> db_;
  std::vector<std::unique_ptr<Subscriber>> durable_;
  std::mutex live_mu_;
  std::vector<Live> live_;
  std::atomic<int64_t> log_end_{0};  // the highest seq the live thread has read

  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t generation_ = 0;  // bumped by notify()
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace cdx::core
