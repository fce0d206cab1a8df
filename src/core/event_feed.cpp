#include "core/event_feed.hpp"

#include <algorithm>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "core/store.hpp"

namespace cdx::core {

using nlohmann::json;

namespace {

constexpr auto kPollFallback = std::chrono::seconds(1);
constexpr const char* kChannel = "cdx_events";

json parse_or(const std::string& text, json fallback) {
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? fallback : j;
}

}  // namespace

json to_json(const LoggedEvent& e) {
  return {{"seq", e.seq},
          {"id", e.id},
          {"tenant_id", e.tenant_id},
          {"type", e.type},
          {"source", e.source},
          {"subject", e.subject.empty() ? json(nullptr) : json(e.subject)},
          {"actor", e.actor},
          {"data", e.data},
          {"created_at", e.created_at}};
}

bool EventFilter::matches(const LoggedEvent& e) const {
  if (tenant_id && e.tenant_id != *tenant_id) return false;
  if (since && e.created_at < *since) return false;
  return matches_type(e.type);
}

bool EventFilter::matches_type(std::string_view type) const {
  if (types.empty()) return true;
  return std::any_of(types.begin(), types.end(), [&](const std::string& t) {
    if (!t.empty() && t.back() == '.') return type.starts_with(t);
    return type == t;
  });
}

LoggedEvent EventFeed::from_row(const db::Row& r) {
  LoggedEvent e;
  e.seq = r.integer(0);
  e.id = r.text(1);
  e.tenant_id = r.text(2);
  e.type = r.text(3);
  e.source = r.text(4);
  if (!r.is_null(5)) e.subject = r.text(5);
  e.actor = r.is_null(6) ? json(nullptr) : parse_or(r.text(6), nullptr);
  e.data = parse_or(r.text(7), json::object());
  e.created_at = r.text(8);
  return e;
}

EventFeed::~EventFeed() { stop(); }

void EventFeed::add_durable(std::string name, Durable fn, Options options) {
  auto s = std::make_unique<Subscriber>();
  s->name = std::move(name);
  s->fn = std::move(fn);
  s->options = options;
  durable_.push_back(std::move(s));
}

void EventFeed::add_live(Live fn) {
  std::lock_guard lock(live_mu_);
  live_.push_back(std::move(fn));
}

void EventFeed::start() {
  {
    std::lock_guard lock(mu_);
    if (!threads_.empty()) return;
    stopping_ = false;
  }
  // Once, not on every step: the cursors exist, and the live feed begins at the log's end as of now.
  ensure_cursors();
  const int64_t live_from = db_->read_platform([](db::Tx& tx) { return Store::last_seq(tx); });
  log_end_ = live_from;
  for (auto& s : durable_) threads_.emplace_back([this, s = s.get()] { run(*s); });
  threads_.emplace_back([this, live_from] { run_live(live_from); });
  if (db_->backend() == db::Backend::kPostgres) threads_.emplace_back([this] { listen(); });
}

void EventFeed::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void EventFeed::notify() {
  {
    std::lock_guard lock(mu_);
    ++generation_;
  }
  cv_.notify_all();
}

std::vector<std::string> EventFeed::durable_names() const {
  std::vector<std::string> out;
  for (const auto& s : durable_) out.push_back(s->name);
  return out;
}

std::vector<EventFeed::SubscriberStats> EventFeed::stats() const {
  std::vector<SubscriberStats> out;
  const int64_t end = log_end_.load();
  for (const auto& s : durable_)
    out.push_back({s->name, std::max<int64_t>(0, end - s->position.load()), s->failing.load()});
  return out;
}

std::vector<LoggedEvent> EventFeed::read_after(int64_t seq, const EventFilter& filter, int limit) {
  return db_->read_platform([&](db::Tx& tx) { return Store::events_after(tx, seq, filter, limit); });
}

int64_t EventFeed::last_seq() {
  return db_->read_platform([](db::Tx& tx) { return Store::last_seq(tx); });
}

std::optional<int64_t> EventFeed::cursor(const std::string& name) {
  return db_->read_platform([&](db::Tx& tx) { return Store::cursor(tx, name); });
}

void EventFeed::ensure_cursors() {
  db_->write_platform([&](db::Tx& tx) {
    for (const auto& s : durable_) Store::ensure_cursor(tx, s->name, s->options.start_at_end);
  });
}

bool EventFeed::step(Subscriber& s) {
  std::lock_guard step_lock(s.mu);
  const EventFilter everything;
  // A read first: an idle subscriber opens no write transaction (SQLite has one writer).
  const auto pending = db_->read_platform([&](db::Tx& tx) -> std::optional<int64_t> {
    auto at = Store::cursor(tx, s.name);
    if (at) s.position = *at;
    if (!at || !Store::any_event_after(tx, *at)) return std::nullopt;
    return at;
  });
  if (!pending) return false;

  size_t handled = 0;
  int64_t moved_to = 0;
  if (s.options.in_transaction) {
    handled = db_->write_platform([&](db::Tx& tx) -> size_t {
      // Another replica holding the row is moving this subscriber now: skip, it will catch up.
      auto at = Store::cursor(tx, s.name, true);
      if (!at) return 0;
      auto batch = Store::events_after(tx, *at, everything, s.options.batch);
      if (batch.empty()) return 0;
      s.fn(&tx, batch);
      Store::move_cursor(tx, s.name, batch.back().seq);
      moved_to = batch.back().seq;
      return batch.size();
    });
    if (handled > 0) s.position = moved_to;
  } else {
    auto batch = read_after(*pending, everything, s.options.batch);
    if (batch.empty()) return false;
    s.fn(nullptr, batch);
    // Never backwards: a replica that ran the same batch may have moved it further already.
    db_->write_platform([&](db::Tx& tx) { Store::move_cursor(tx, s.name, batch.back().seq); });
    s.position = batch.back().seq;
    handled = batch.size();
  }
  if (handled > 0 && s.options.after_commit) s.options.after_commit();
  return static_cast<int>(handled) == s.options.batch;
}

void EventFeed::run(Subscriber& s) {
  uint64_t seen = 0;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      seen = generation_;
    }
    bool more = false;
    try {
      more = step(s);
      s.backoff = std::chrono::milliseconds(0);
      s.failing = false;
    } catch (const std::exception& e) {
      s.failing = true;
      s.backoff = std::min<std::chrono::milliseconds>(
          std::max(s.backoff * 2, std::chrono::milliseconds(1000)), std::chrono::seconds(30));
      log::error("event subscriber failed; retrying",
                 {{"subscriber", s.name}, {"error", e.what()}, {"retry_in_ms", s.backoff.count()}});
      try {
        db_->write_platform([&](db::Tx& tx) { Store::cursor_failed(tx, s.name, e.what()); });
      } catch (...) {
      }
    }
    if (more) continue;
    std::unique_lock lock(mu_);
    if (s.backoff.count() > 0)
      cv_.wait_for(lock, s.backoff, [&] { return stopping_; });
    else
      cv_.wait_for(lock, kPollFallback, [&] { return stopping_ || generation_ != seen; });
  }
}

void EventFeed::run_live(int64_t at) {
  uint64_t seen = 0;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      seen = generation_;
    }
    bool more = false;
    try {
      auto batch = read_after(at, EventFilter{}, 1000);
      if (!batch.empty()) {
        at = batch.back().seq;
        log_end_ = at;
        more = batch.size() == 1000;
        std::vector<Live> fns;
        {
          std::lock_guard lock(live_mu_);
          fns = live_;
        }
        for (const auto& fn : fns) {
          try {
            fn(batch);
          } catch (const std::exception& e) {
            log::error("live event listener failed", {{"error", e.what()}});
          }
        }
      }
    } catch (const std::exception& e) {
      log::error("live event feed cannot read the log", {{"error", e.what()}});
    }
    if (more) continue;
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, kPollFallback, [&] { return stopping_ || generation_ != seen; });
  }
}

void EventFeed::listen() {
  std::unique_ptr<db::Listener> listener;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    try {
      if (!listener) listener = db_->listen(kChannel);
      if (!listener) return;
      // Short waits, so stop() is noticed promptly.
      if (listener->wait(std::chrono::milliseconds(200))) notify();
    } catch (const std::exception& e) {
      log::warn("event log listener lost its connection; reconnecting", {{"error", e.what()}});
      listener.reset();
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; });
    }
  }
}

void EventFeed::drain() {
  ensure_cursors();
  for (auto& s : durable_) {
    while (step(*s)) {
    }
  }
}

}  // namespace cdx::core
