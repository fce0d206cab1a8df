#include "core/store.hpp"

#include "common/clock.hpp"

#include <array>
#include <deque>
#include <functional>

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

// " AND (type = $n OR (type >= $m AND type < $k) …)" for types (exact names, or prefixes ending in '.'),
// binding through bind; `owned` keeps the texts the parameters view.
std::string type_predicate(const std::vector<std::string>& types,
                           const std::function<std::string(db::Param)>& bind,
                           std::deque<std::string>& owned) {
  if (types.empty()) return {};
  std::string any;
  for (const auto& t : types) {
    any += any.empty() ? " AND (" : " OR ";
    if (!t.empty() && t.back() == '.') {
      // A prefix as a range, which the (type, seq) index answers: "crm." <= type < "crm/".
      std::string& next = owned.emplace_back(t);
      next.back() = '/';
      any += "(type >= " + bind(db::Param(t)) + " AND type < " + bind(db::Param(next)) + ")";
    } else {
      any += "type = " + bind(db::Param(t));
    }
  }
  return any + ")";
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// One event as the log's row takes it: the payload's text as it came (dumped only when it came as an object),
// and the subject and actor read from that text; the views point into the event or into `owned`.
struct LogRow {
  LogRow(const LogRow&) = delete;                         // the views may point into the owned strings
  std::string owned_payload, owned_subject, owned_actor;  // when the text had to be dumped or parsed
  std::string_view payload;
  std::optional<std::string_view> subject, actor;

  explicit LogRow(const db::OutboxEvent& e) {
    if (e.payload_text.empty()) owned_payload = dump(e.payload);
    payload = e.payload_text.empty() ? std::string_view(owned_payload) : std::string_view(e.payload_text);
    if (auto facts = db::scan_payload(payload)) {
      if (facts->subject && !facts->subject->empty()) subject = facts->subject;
      actor = facts->actor;
      return;
    }
    // Text the scanner does not follow (an escaped name or id): the parsed object says.
    const json j = json::parse(payload, nullptr, false);
    if (!j.is_object()) {
      owned_payload = "{}";
      payload = owned_payload;
      return;
    }
    owned_subject = subject_of(j);
    if (!owned_subject.empty()) subject = owned_subject;
    if (j.contains("actor")) actor = owned_actor = dump(j["actor"]);
  }
};

// text[] literal for PostgreSQL: {"a","b\"c",NULL}.
void append_array_item(std::string& out, std::optional<std::string_view> v) {
  out += out.size() > 1 ? "," : "";
  if (!v) {
    out += "NULL";
    return;
  }
  out += '"';
  for (char c : *v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

}  // namespace

void Store::record_events(const std::vector<db::OutboxEvent>& events) {
  if (events.empty()) return;
  const std::string now = format_rfc3339(Clock::now());
  std::deque<LogRow> rows;
  for (const auto& e : events) rows.emplace_back(e);
  auto nullable = [](std::optional<std::string_view> v) { return v ? db::Param(*v) : db::Param(nullptr); };
  // PostgreSQL: each column as one array parameter, built before the transaction (it holds the log's lock):
  // one statement of the same text, whatever the batch's size, in the order given (WITH ORDINALITY), so the
  // sequence follows it.
  std::vector<std::array<std::string, 8>> chunks;
  if (db_->backend() == db::Backend::kPostgres) {
    constexpr size_t kRows = 5000;
    for (size_t at = 0; at < events.size(); at += kRows) {
      const size_t end = std::min(events.size(), at + kRows);
      auto& columns = chunks.emplace_back();
      size_t bytes = 0;
      for (size_t i = at; i < end; ++i) bytes += rows[i].payload.size() + 256;
      for (auto& c : columns) c = "{";
      columns[6].reserve(bytes + bytes / 8);
      for (size_t i = at; i < end; ++i) {
        const db::OutboxEvent& e = events[i];
        append_array_item(columns[0], e.id);
        append_array_item(columns[1], e.tenant_id);
        append_array_item(columns[2], e.type);
        append_array_item(columns[3], e.schema);
        append_array_item(columns[4], rows[i].subject);
        append_array_item(columns[5], rows[i].actor);
        append_array_item(columns[6], rows[i].payload);
        append_array_item(columns[7], e.created_at);
      }
      for (auto& c : columns) c += "}";
    }
  }
  db_->write_platform([&](db::Tx& tx) {
    if (tx.backend() == db::Backend::kSqlite) {
      // One prepared statement a row: SQLite runs it in microseconds, and finds a statement's many numbered
      // parameters by a linear search each.
      for (size_t i = 0; i < events.size(); ++i) {
        const db::OutboxEvent& e = events[i];
        tx.query(
            "INSERT INTO cdx_db.events (id, tenant_id, type, source, subject, actor, payload, created_at, "
            "recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
            {e.id, e.tenant_id, e.type, e.schema, nullable(rows[i].subject), nullable(rows[i].actor),
             rows[i].payload, e.created_at, now});
      }
      return;
    }
    tx.query("SELECT pg_advisory_xact_lock(7305730573057305)");
    // The batch's rows are sorted by their position (the order guaranteed): in memory, not spilled to disk.
    tx.query("SET LOCAL work_mem = '64MB'");
    for (const auto& columns : chunks)
      tx.query(
          "INSERT INTO cdx_db.events (id, tenant_id, type, source, subject, actor, payload, created_at, "
          "recorded_at) "
          "SELECT id, tenant_id, type, source, subject, actor, payload, created_at, $9::text FROM "
          "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], "
          "$8::text[]) "
          "WITH ORDINALITY AS e(id, tenant_id, type, source, subject, actor, payload, created_at, n) ORDER "
          "BY n "
          "ON CONFLICT (id) DO NOTHING",
          {columns[0], columns[1], columns[2], columns[3], columns[4], columns[5], columns[6], columns[7],
           now});
    // Every core process listening (its live feed, its subscribers) hears of it when this commits.
    tx.query("SELECT pg_notify('cdx_events', '')");
  });
}

json Store::list_events(const EventQuery& q) {
  return db_->read_platform([&](db::Tx& tx) {
    std::string sql = std::string("SELECT ") + EventFeed::kColumns + " FROM cdx_db.events WHERE 1 = 1";
    db::Params params;
    std::deque<std::string> owned;  // text the parameters view
    auto bind = [&](db::Param p) {
      params.push_back(p);
      return "$" + std::to_string(params.size());
    };
    if (q.tenant_id) sql += " AND tenant_id = " + bind(*q.tenant_id);
    sql += type_predicate(q.types, bind, owned);
    if (q.since) sql += " AND created_at >= " + bind(*q.since);
    if (q.until) sql += " AND created_at < " + bind(*q.until);
    if (q.before_seq) sql += " AND seq < " + bind(*q.before_seq);
    sql += " ORDER BY seq DESC LIMIT " + bind(static_cast<int64_t>(q.limit) + 1);
    json out = json::array();
    for (const auto& r : tx.query(sql, params).rows) out.push_back(to_json(EventFeed::from_row(r)));
    return out;
  });
}

std::vector<LoggedEvent> Store::events_after(db::Tx& tx, int64_t seq, const EventFilter& filter, int limit) {
  std::string sql = std::string("SELECT ") + EventFeed::kColumns + " FROM cdx_db.events WHERE seq > $1";
  db::Params params{seq};
  std::deque<std::string> owned;
  auto bind = [&](db::Param p) {
    params.push_back(p);
    return "$" + std::to_string(params.size());
  };
  if (filter.tenant_id) sql += " AND tenant_id = " + bind(*filter.tenant_id);
  sql += type_predicate(filter.types, bind, owned);
  if (filter.since) sql += " AND created_at >= " + bind(*filter.since);
  sql += " ORDER BY seq LIMIT " + bind(static_cast<int64_t>(std::max(1, limit)));
  std::vector<LoggedEvent> out;
  for (const auto& r : tx.query(sql, params).rows) out.push_back(EventFeed::from_row(r));
  return out;
}

bool Store::any_event_after(db::Tx& tx, int64_t seq) {
  return !tx.query("SELECT 1 FROM cdx_db.events WHERE seq > $1 LIMIT 1", {seq}).empty();
}

int64_t Store::last_seq(db::Tx& tx) {
  return tx.query("SELECT COALESCE(MAX(seq), 0) FROM cdx_db.events").rows.at(0).integer(0);
}

void Store::ensure_cursor(db::Tx& tx, const std::string& name, bool at_end) {
  const std::string start = at_end ? "(SELECT COALESCE(MAX(seq), 0) FROM cdx_db.events)" : "0";
  tx.query("INSERT INTO cdx_db.event_cursors (name, seq, updated_at) SELECT $1, " + start +
               ", $2 WHERE true ON CONFLICT (name) DO NOTHING",
           {name, format_rfc3339(Clock::now())});
}

std::optional<int64_t> Store::cursor(db::Tx& tx, const std::string& name, bool lock) {
  auto r = tx.query(std::string("SELECT seq FROM cdx_db.event_cursors WHERE name = $1") +
                        (lock && tx.backend() == db::Backend::kPostgres ? " FOR UPDATE SKIP LOCKED" : ""),
                    {name});
  if (r.empty()) return std::nullopt;
  return r.rows[0].integer(0);
}

void Store::move_cursor(db::Tx& tx, const std::string& name, int64_t seq) {
  tx.query(
      "UPDATE cdx_db.event_cursors SET seq = $2, updated_at = $3, last_error = NULL WHERE name = $1 AND seq "
      "< $2",
      {name, seq, format_rfc3339(Clock::now())});
}

void Store::cursor_failed(db::Tx& tx, const std::string& name, const std::string& error) {
  tx.query("UPDATE cdx_db.event_cursors SET last_error = $2 WHERE name = $1", {name, error});
}

int64_t Store::prune_events(const std::string& cutoff, int64_t limit,
                            const std::vector<std::string>& cursors) {
  return db_->write_platform([&](db::Tx& tx) {
    // The lowest position of the subscribers this build runs (the names as one JSON/array parameter).
    json names = cursors;
    const bool pg = tx.backend() == db::Backend::kPostgres;
    const int64_t floor =
        tx.query(std::string(
                     "SELECT COALESCE(MIN(seq), 9223372036854775807) FROM cdx_db.event_cursors WHERE name ") +
                     (pg ? "= ANY(ARRAY(SELECT json_array_elements_text($1::json)))"
                         : "IN (SELECT value FROM json_each($1))"),
                 {names.dump()})
            .rows.at(0)
            .integer(0);
    // created_at is indexed; the rows go oldest first, a bounded number per call, so a large backlog is
    // pruned over several passes without one long transaction.
    auto r = tx.query(
        "DELETE FROM cdx_db.events WHERE seq IN (SELECT seq FROM cdx_db.events WHERE created_at < $1 "
        "AND seq <= $3 ORDER BY created_at LIMIT $2)",
        {cutoff, limit, floor});
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
    // The platform's calls per day, for its overview: one row a day to read.
    std::map<std::string, int64_t> days;
    for (const auto& u : usage) days[u.day] += u.calls;
    for (const auto& [day, calls] : days)
      tx.query(
          "INSERT INTO cdx_db.usage_daily AS u (tenant_id, day, key_id, calls) VALUES ('*', $1, '', $2) "
          "ON CONFLICT (tenant_id, day, key_id) DO UPDATE SET calls = u.calls + excluded.calls",
          {day, calls});
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
