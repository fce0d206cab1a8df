// TEMPORARY (branch sse): the parts of core/event_feed.hpp the live feed uses, until main's
// event_feed.cpp lands; deleted when it is merged.
#include "core/event_feed.hpp"

namespace cdx::core {

nlohmann::json to_json(const LoggedEvent& e) {
  return {{"seq", e.seq},
          {"id", e.id},
          {"tenant_id", e.tenant_id},
          {"type", e.type},
          {"source", e.source},
          {"subject", e.subject.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.subject)},
          {"actor", e.actor},
          {"data", e.data},
          {"created_at", e.created_at}};
}

bool EventFilter::matches(const LoggedEvent& e) const {
  if (tenant_id && e.tenant_id != *tenant_id) return false;
  if (types.empty()) return true;
  for (const auto& t : types)
    if (t.ends_with('.') ? e.type.starts_with(t) : e.type == t) return true;
  return false;
}

struct EventFeed::Subscriber {};

EventFeed::EventFeed(std::shared_ptr<db::Database> db) : db_(std::move(db)) {}
EventFeed::~EventFeed() { stop(); }

int EventFeed::add_live(Live fn) {
  std::lock_guard lock(live_mu_);
  live_.emplace_back(next_live_, std::move(fn));
  return next_live_++;
}

void EventFeed::remove_live(int id) {
  std::lock_guard lock(live_mu_);
  std::erase_if(live_, [id](const auto& p) { return p.first == id; });
}

void EventFeed::start() {
  threads_.emplace_back([this] { run_live(); });
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

// Polls every 20 ms (main's version is woken on commit).
void EventFeed::run_live() {
  int64_t cursor = -1;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    try {
      if (cursor < 0) cursor = last_seq();
      for (;;) {
        auto batch = read_after(cursor, EventFilter{}, 1000);
        if (batch.empty()) break;
        cursor = batch.back().seq;
        std::lock_guard l(live_mu_);
        for (auto& [id, fn] : live_) fn(batch);
      }
    } catch (const std::exception&) {
    }
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(20));
  }
}

LoggedEvent EventFeed::from_row(const db::Row& r) {
  LoggedEvent e;
  e.seq = r.integer(0);
  e.id = r.text(1);
  e.tenant_id = r.text(2);
  e.type = r.text(3);
  e.source = r.text(4);
  e.subject = r.is_null(5) ? "" : r.text(5);
  auto actor = r.is_null(6) ? nlohmann::json(nullptr) : nlohmann::json::parse(r.text(6), nullptr, false);
  e.actor = actor.is_discarded() ? nlohmann::json(nullptr) : actor;
  auto data = nlohmann::json::parse(r.text(7), nullptr, false);
  e.data = data.is_discarded() ? nlohmann::json::object() : data;
  e.created_at = r.text(8);
  return e;
}

std::vector<LoggedEvent> EventFeed::read_after(int64_t seq, const EventFilter& filter, int limit) {
  return db_->read_platform([&](db::Tx& tx) {
    std::vector<LoggedEvent> out;
    std::string sql = std::string("SELECT ") + kColumns + " FROM cdx_db.events WHERE seq > $1";
    db::Params params{db::Param(seq)};
    if (filter.tenant_id) {
      params.push_back(db::Param(*filter.tenant_id));
      sql += " AND tenant_id = $2";
    }
    std::vector<std::string> owned;
    owned.reserve(filter.types.size());
    std::string any;
    for (const auto& t : filter.types) {
      any += any.empty() ? " AND (" : " OR ";
      params.push_back(db::Param(t));
      if (t.ends_with('.')) {
        std::string& next = owned.emplace_back(t);
        next.back() = '/';
        params.push_back(db::Param(next));
        any += "(type >= $" + std::to_string(params.size() - 1) + " AND type < $" +
               std::to_string(params.size()) + ")";
      } else {
        any += "type = $" + std::to_string(params.size());
      }
    }
    if (!any.empty()) sql += any + ")";
    sql += " ORDER BY seq LIMIT " + std::to_string(limit);
    for (const auto& r : tx.query(sql, params).rows) out.push_back(from_row(r));
    return out;
  });
}

int64_t EventFeed::last_seq() {
  return db_->read_platform([&](db::Tx& tx) {
    auto res = tx.query("SELECT COALESCE(MAX(seq), 0) FROM cdx_db.events");
    return res.rows.empty() ? int64_t{0} : res.rows[0].integer(0);
  });
}

}  // namespace cdx::core
