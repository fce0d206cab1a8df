// Core's subscribers of the event log, started with the server, and the log's retention.
#include "common/clock.hpp"
#include "common/log.hpp"
#include "core/module.hpp"

namespace cdx::core {

namespace {

webhooks::Event to_webhook(const LoggedEvent& e) {
  return {e.seq, e.id, e.tenant_id, e.type, e.created_at, e.data};
}

}  // namespace

void CoreModule::start_background() {
  // A deleted tenant's data goes from every module: the cursor passes tenant.deleted only once every module
  // has purged (each purge is idempotent), so a restart in the middle finishes the purge.
  EventFeed::Options purge;
  purge.in_transaction = false;  // it calls the other modules (over HTTP in a constellation)
  purge.batch = 100;
  feed_.add_durable(
      "purge",
      [this](db::Tx*, const std::vector<LoggedEvent>& batch) {
        for (const LoggedEvent& e : batch) {
          if (e.type != "tenant.deleted" || e.tenant_id.empty()) continue;
          // A tenant deleted and made again under the same id cannot happen (ids are UUIDv7), so a purge
          // replayed after a restart never touches a living tenant.
          service_.purge_deleted(e.tenant_id);
          log::info("tenant purged", {{"tenant_id", e.tenant_id}, {"event_id", e.id}});
        }
      },
      purge);
  // The tenant overview's counters, in the transaction that moves the cursor: each event counts once. From
  // the log's beginning, so a new platform counts everything (an older one runs `cdx admin
  // rebuild-aggregates` once).
  EventFeed::Options counting;
  counting.start_at_end = false;
  feed_.add_durable(
      Aggregates::kSubscriber,
      [this](db::Tx* tx, const std::vector<LoggedEvent>& batch) { aggregates_.apply(*tx, batch); }, counting);
  // The live feed: each batch of new events to the SSE hub, which only queues them (never blocks).
  feed_.add_live([this](const std::vector<LoggedEvent>& batch) { hub_.publish(batch); });
  // Webhooks: one delivery per (event, matching endpoint), inserted in the transaction that moves the
  // cursor; the sender (its own threads) posts them.
  // Replays read the log through the feed (core's SQL: types and time filtered there, in pages).
  webhooks_.read_log = [this](int64_t after_seq, const webhooks::LogQuery& q, int limit) {
    EventFilter filter{q.tenant_id, q.types, q.since};
    std::vector<webhooks::Event> events;
    for (const LoggedEvent& e : feed_.read_after(after_seq, filter, limit)) events.push_back(to_webhook(e));
    return events;
  };
  EventFeed::Options delivering;
  delivering.after_commit = [this] { webhooks_.wake(); };  // the new deliveries are visible now
  feed_.add_durable(
      "webhooks",
      [this](db::Tx* tx, const std::vector<LoggedEvent>& batch) {
        std::vector<webhooks::Event> events;
        events.reserve(batch.size());
        for (const LoggedEvent& e : batch) events.push_back(to_webhook(e));
        webhooks_.fan_out(*tx, events);
      },
      delivering);
  webhooks_.start();
  feed_.start();
}

void CoreModule::tick() {
  services_.poll();
  // Retention: a bounded pass a minute keeps up with any rate the log grows at.
  if (ticks_++ % 60 != 30) return;
  const std::string cutoff =
      format_rfc3339(Clock::now() - std::chrono::hours(24) * config_.event_retention_days);
  int64_t pruned = 0;
  for (int i = 0; i < 20; ++i) {
    const int64_t n = store_.prune_events(cutoff, 10000, feed_.durable_names());
    pruned += n;
    if (n < 10000) break;
  }
  if (pruned > 0) log::info("event log pruned", {{"events", pruned}, {"before", cutoff}});
}

}  // namespace cdx::core
