#include "core/store.hpp"

#include "common/clock.hpp"

#include <deque>

namespace cdx::core {

namespace {

using nlohmann::json;

// What the event is about: the payload's own id (a deletion's), or the id of the first object in it that has
// one ({"contact": {"id": …}}).
std::string subject_of(const json& payload) {
  if (!payload.is_object()) return {};
  if (auto it = payload.find("id"); it != payload.end() && it->is_string())
    return it->get<std::string>();  // deleted
  for (const auto& [k, v] : payload.items())
    if (k != "actor" && v.is_object() && v.contains("id") && v["id"].is_string())
      return v["id"].get<std::string>();
  return {};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

void Store::record_events(const std::vector<db::OutboxEvent>& events) {
  if (events.empty()) return;
  const std::string now = format_rfc3339(Clock::now());
  db_->write_platform([&](db::Tx& tx) {
    if (tx.backend() == db::Backend::kPostgres) tx.query("SELECT pg_advisory_xact_lock(7305730573057305)");
    constexpr size_t kRows = 500;  // 9 parameters a row, well under either database's limit
    for (size_t at = 0; at < events.size(); at += kRows) {
      std::string sql =
          "INSERT INTO cdx_db.events (id, tenant_id, type, source, subject, actor, payload, created_at, "
          "recorded_at) VALUES ";
      db::Params params;
      std::vector<std::string> texts;  // the parameters view them
      texts.reserve(3 * kRows);
      const size_t end = std::min(events.size(), at + kRows);
      for (size_t i = at; i < end; ++i) {
        const db::OutboxEvent& e = events[i];
        const size_t n = params.size();
        sql += (i == at ? "(" : ", (");
        for (size_t k = 1; k <= 9; ++k) sql += (k == 1 ? "$" : ", $") + std::to_string(n + k);
        sql += ")";
        texts.push_back(subject_of(e.payload));
        texts.push_back(e.payload.is_object() && e.payload.contains("actor") ? dump(e.payload["actor"]) : "");
        texts.push_back(dump(e.payload));
        const size_t t = texts.size() - 3;
        params.insert(params.end(),
                      {db::Param(e.id), db::Param(e.tenant_id), db::Param(e.type), db::Param(e.schema),
                       texts[t].empty() ? db::Param(nullptr) : db::Param(texts[t]),
                       texts[t + 1].empty() ? db::Param(nullptr) : db::Param(texts[t + 1]),
                       db::Param(texts[t + 2]), db::Param(e.created_at), db::Param(now)});
      }
      sql += " ON CONFLICT (id) DO NOTHING";
      tx.query(sql, params);
    }
    // Every core process listening (its live feed, its subscribers) hears of it when this commits.
    if (tx.backend() == db::Backend::kPostgres) tx.query("SELECT pg_notify('cdx_events', '')");
  });
}

json Store::list_events(const EventQuery& q) {
  return db_->read_platform([&](db::Tx& tx) {
    std::string sql =
        "SELECT seq, id, tenant_id, type, source, subject, actor, payload, created_at FROM cdx_db.events "
        "WHERE 1 = 1";
    db::Params params;
    std::deque<std::string> owned;  // text the parameters view
    auto bind = [&](db::Param p) {
      params.push_back(p);
      return "$" + std::to_string(params.size());
    };
    if (q.tenant_id) sql += " AND tenant_id = " + bind(*q.tenant_id);
    if (!q.types.empty()) {
      std::string any;
      for (const auto& t : q.types) {
        any += any.empty() ? "(" : " OR ";
        if (!t.empty() && t.back() == '.') {
          // A prefix as a range, which the (type, seq) index answers: "crm." <= type < "crm/".
          std::string& next = owned.emplace_back(t);
          next.back() = '/';
          any += "(type >= " + bind(t) + " AND type < " + bind(next) + ")";
        } else {
          any += "type = " + bind(t);
        }
      }
      sql += " AND " + any + ")";
    }
    if (q.since) sql += " AND created_at >= " + bind(*q.since);
    if (q.until) sql += " AND created_at < " + bind(*q.until);
    if (q.before_seq) sql += " AND seq < " + bind(*q.before_seq);
    sql += " ORDER BY seq DESC LIMIT " + bind(static_cast<int64_t>(q.limit) + 1);
    json out = json::array();
    for (const auto& r : tx.query(sql, params).rows) {
      json data = json::parse(r.text(7), nullptr, false);
      json actor = r.is_null(6) ? json(nullptr) : json::parse(r.text(6), nullptr, false);
      out.push_back({{"seq", r.integer(0)},
                     {"id", r.text(1)},
                     {"tenant_id", r.text(2)},
                     {"type", r.text(3)},
                     {"source", r.text(4)},
                     {"subject", r.is_null(5) ? json(nullptr) : json(r.text(5))},
                     {"actor", actor.is_discarded() ? json(nullptr) : actor},
                     {"data", data.is_discarded() ? json::object() : data},
                     {"created_at", r.text(8)}});
    }
    return out;
  });
}

int64_t Store::prune_events(const std::string& cutoff, int64_t limit) {
  return db_->write_platform([&](db::Tx& tx) {
    // created_at is indexed; the rows go oldest first, a bounded number per call, so a large backlog is
    // pruned over several passes without one long transaction.
    auto r = tx.query(
        "DELETE FROM cdx_db.events WHERE seq IN (SELECT seq FROM cdx_db.events WHERE created_at < $1 "
        "AND seq <= (SELECT COALESCE(MIN(seq), 9223372036854775807) FROM cdx_db.event_cursors) "
        "ORDER BY created_at LIMIT $2)",
        {cutoff, limit});
    return r.affected;
  });
}

bool Store::plan_exists(db::Tx& tx, std::string_view key) {
  return !tx.query("SELECT 1 FROM cdx_db.plans WHERE key = $1", {key}).empty();
}

void Store::delete_usage(db::Tx& tx, const std::string& tenant_id) {
  tx.query("DELETE FROM cdx_db.usage_daily WHERE tenant_id = $1", {tenant_id});
}

void Store::add_usage(const std::vector<kit::Usage>& usage) {
  if (usage.empty()) return;
  db_->write_platform([&](db::Tx& tx) {
    for (const auto& u : usage)
      tx.query(
          "INSERT INTO cdx_db.usage_daily AS u (tenant_id, day, key_id, calls) "
          "SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM cdx_db.tenants WHERE id = $1) "
          "ON CONFLICT (tenant_id, day, key_id) DO UPDATE SET calls = u.calls + excluded.calls",
          {u.tenant_id, u.day, u.key_id, u.calls});
  });
}

std::vector<std::pair<std::string, int64_t>> Store::usage_by_day(const std::string& tenant_id,
                                                                 const std::string& from,
                                                                 const std::string& to) {
  return db_->read_platform([&](db::Tx& tx) {
    std::vector<std::pair<std::string, int64_t>> out;
    for (const auto& r : tx.query("SELECT day, SUM(calls) FROM cdx_db.usage_daily WHERE tenant_id = $1 "
                                  "AND day >= $2 AND day <= $3 GROUP BY day ORDER BY day",
                                  {tenant_id, from, to})
                             .rows)
      out.emplace_back(r.text(0), r.integer(1));
    return out;
  });
}

std::vector<std::pair<std::string, int64_t>> Store::usage_by_key(const std::string& tenant_id,
                                                                 const std::string& from,
                                                                 const std::string& to) {
  return db_->read_platform([&](db::Tx& tx) {
    std::vector<std::pair<std::string, int64_t>> out;
    for (const auto& r :
         tx.query("SELECT key_id, SUM(calls) AS n FROM cdx_db.usage_daily WHERE tenant_id = $1 "
                  "AND day >= $2 AND day <= $3 GROUP BY key_id ORDER BY n DESC, key_id",
                  {tenant_id, from, to})
             .rows)
      out.emplace_back(r.text(0), r.integer(1));
    return out;
  });
}

int64_t Store::count_superadmins() {
  return db_->read_platform(
      [&](db::Tx& tx) { return tx.query("SELECT COUNT(*) FROM cdx_db.superadmins").rows.at(0).integer(0); });
}

void Store::insert_superadmin(const Superadmin& s) {
  db_->write_platform([&](db::Tx& tx) {
    tx.query(
        "INSERT INTO cdx_db.superadmins (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4)",
        {s.id, s.username, s.password_hash, format_rfc3339(Clock::now())});
  });
}

std::optional<Superadmin> Store::find_superadmin_by_username(std::string_view username) {
  return db_->read_platform([&](db::Tx& tx) -> std::optional<Superadmin> {
    auto res = tx.query("SELECT id, username, password_hash FROM cdx_db.superadmins WHERE username = $1",
                        {username});
    if (res.empty()) return std::nullopt;
    return Superadmin{res.rows[0].text(0), res.rows[0].text(1), res.rows[0].text(2)};
  });
}

std::optional<Superadmin> Store::find_superadmin(std::string_view id) {
  return db_->read_platform([&](db::Tx& tx) -> std::optional<Superadmin> {
    auto res = tx.query("SELECT id, username, password_hash FROM cdx_db.superadmins WHERE id = $1", {id});
    if (res.empty()) return std::nullopt;
    return Superadmin{res.rows[0].text(0), res.rows[0].text(1), res.rows[0].text(2)};
  });
}

void Store::touch_superadmin_login(const std::string& id) {
  db_->write_platform([&](db::Tx& tx) {
    tx.query("UPDATE cdx_db.superadmins SET last_login_at = $2 WHERE id = $1",
             {id, format_rfc3339(Clock::now())});
  });
}

}  // namespace cdx::core
