#include "core/event_feed.hpp"

#include <algorithm>

#include "common/clock.hpp"
#include "common/log.hpp"

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

int EventFeed::add_live(Live fn) {
  std::lock_guard lock(live_mu_);
  live_.emplace_back(next_live_, std::move(fn));
  return next_live_++;
}

void EventFeed::remove_live(int id) {
  std::lock_guard lock(live_mu_);
  std::erase_if(live_, [&](const auto& p) { return p.first == id; });
}

void EventFeed::start() {
  {
    std::lock_guard lock(mu_);
    if (!threads_.empty()) return;
    stopping_ = false;
  }
  for (auto& s : durable_) threads_.emplace_back([this, s = s.get()] { run(*s); });
  threads_.emplace_back([this] { run_live(); });
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

std::vector<LoggedEvent> EventFeed::read_after(int64_t seq, const EventFilter& filter, int limit) {
  return db_->read_platform([&](db::Tx& tx) {
    std::string sql = std::string("SELECT ") + kColumns + " FROM cdx_db.events WHERE seq > $1";
    db::Params params{seq};
    if (filter.tenant_id) {
      sql += " AND tenant_id = $2";
      params.push_back(*filter.tenant_id);
    }
    // Types are matched here rather than in SQL: a reader replaying a gap reads what it missed, a page at a
    // time, and the filter rarely leaves much out.
    sql += " ORDER BY seq LIMIT " + std::to_string(std::max(1, limit) * (filter.types.empty() ? 1 : 4));
    std::vector<LoggedEvent> out;
    for (const auto& r : tx.query(sql, params).rows) {
      LoggedEvent e = from_row(r);
      if (filter.matches(e) && static_cast<int>(out.size()) < limit) out.push_back(std::move(e));
    }
    return out;
  });
}

int64_t EventFeed::last_seq() {
  return db_->read_platform([&](db::Tx& tx) {
    auto r = tx.query("SELECT COALESCE(MAX(seq), 0) FROM cdx_db.events");
    return r.rows.at(0).integer(0);
  });
}

std::optional<int64_t> EventFeed::cursor(const std::string& name) {
  return db_->read_platform([&](db::Tx& tx) -> std::optional<int64_t> {
    auto r = tx.query("SELECT seq FROM cdx_db.event_cursors WHERE name = $1", {name});
    if (r.empty()) return std::nullopt;
    return r.rows[0].integer(0);
  });
}

bool EventFeed::step(Subscriber& s) {
  std::lock_guard step_lock(s.mu);
  const bool pg = db_->backend() == db::Backend::kPostgres;
  auto read_batch = [&](db::Tx& tx, int64_t after) {
    std::vector<LoggedEvent> batch;
    for (const auto& r : tx.query(std::string("SELECT ") + kColumns +
                                      " FROM cdx_db.events WHERE seq > $1 ORDER BY seq LIMIT $2",
                                  {after, static_cast<int64_t>(s.options.batch)})
                             .rows)
      batch.push_back(from_row(r));
    return batch;
  };
  // A new subscriber starts at the log's end (or beginning); a second replica racing to create it is a no-op.
  auto ensure_cursor = [&](db::Tx& tx) {
    const std::string start =
        s.options.start_at_end ? "(SELECT COALESCE(MAX(seq), 0) FROM cdx_db.events)" : "0";
    tx.query("INSERT INTO cdx_db.event_cursors (name, seq, updated_at) SELECT $1, " + start +
                 ", $2 WHERE true ON CONFLICT (name) DO NOTHING",
             {s.name, format_rfc3339(Clock::now())});
  };
  auto advance = [&](db::Tx& tx, int64_t seq) {
    tx.query("UPDATE cdx_db.event_cursors SET seq = $2, updated_at = $3, last_error = NULL WHERE name = $1",
             {s.name, seq, format_rfc3339(Clock::now())});
  };

  if (s.options.in_transaction) {
    return db_->write_platform([&](db::Tx& tx) {
      ensure_cursor(tx);
      // Another replica holding the row is moving this subscriber now: skip, it will catch up.
      auto cur = tx.query(std::string("SELECT seq FROM cdx_db.event_cursors WHERE name = $1") +
                              (pg ? " FOR UPDATE SKIP LOCKED" : ""),
                          {s.name});
      if (cur.empty()) return false;
      auto batch = read_batch(tx, cur.rows[0].integer(0));
      if (batch.empty()) return false;
      s.fn(&tx, batch);
      advance(tx, batch.back().seq);
      return static_cast<int>(batch.size()) == s.options.batch;
    });
  }
  db_->write_platform([&](db::Tx& tx) { ensure_cursor(tx); });
  auto batch = db_->read_platform([&](db::Tx& tx) {
    auto cur = tx.query("SELECT seq FROM cdx_db.event_cursors WHERE name = $1", {s.name});
    return read_batch(tx, cur.rows.at(0).integer(0));
  });
  if (batch.empty()) return false;
  s.fn(nullptr, batch);
  // Never backwards: a replica that ran the same batch may have moved it further already.
  db_->write_platform([&](db::Tx& tx) {
    tx.query(
        "UPDATE cdx_db.event_cursors SET seq = $2, updated_at = $3, last_error = NULL "
        "WHERE name = $1 AND seq < $2",
        {s.name, batch.back().seq, format_rfc3339(Clock::now())});
  });
  return static_cast<int>(batch.size()) == s.options.batch;
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
    } catch (const std::exception& e) {
      s.backoff = std::min<std::chrono::milliseconds>(
          std::max(s.backoff * 2, std::chrono::milliseconds(1000)), std::chrono::seconds(30));
      log::error("event subscriber failed; retrying",
                 {{"subscriber", s.name}, {"error", e.what()}, {"retry_in_ms", s.backoff.count()}});
      try {
        db_->write_platform([&](db::Tx& tx) {
          tx.query("UPDATE cdx_db.event_cursors SET last_error = $2 WHERE name = $1",
                   {s.name, std::string(e.what())});
        });
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

void EventFeed::run_live() {
  int64_t at = -1;
  uint64_t seen = 0;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      seen = generation_;
    }
    bool more = false;
    try {
      if (at < 0) at = last_seq();
      auto batch = read_after(at, EventFilter{}, 1000);
      if (!batch.empty()) {
        at = batch.back().seq;
        more = batch.size() == 1000;
        std::vector<Live> fns;
        {
          std::lock_guard lock(live_mu_);
          for (const auto& [id, fn] : live_) fns.push_back(fn);
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
  for (auto& s : durable_) {
    for (int i = 0; i < 100000 && step(*s); ++i) {
    }
  }
}

}  // namespace cdx::core
