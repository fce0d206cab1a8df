#include "core/store.hpp"

#include "common/clock.hpp"

#include <array>
#include <deque>
#include <functional>
#include <unordered_map>

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

// One field of a line in COPY's text format, followed by a tab: \N for NULL; backslash, tab, newline and
// carriage return escaped (nothing else is special).
void append_copy_field(std::string& out, std::optional<std::string_view> v) {
  if (!v) {
    out += "\\N\t";
    return;
  }
  // Runs of plain text go in whole: payloads are long and seldom hold a character to escape.
  std::string_view rest = *v;
  for (size_t at; (at = rest.find_first_of("\\\t\n\r")) != std::string_view::npos;
       rest.remove_prefix(at + 1)) {
    out.append(rest.substr(0, at));
    out += '\\';
    const char c = rest[at];
    out += c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ? 'r' : '\\';
  }
  out.append(rest);
  out += '\t';
}

}  // namespace

void Store::record_events(const std::vector<db::OutboxEvent>& events) {
  if (events.empty()) return;
  const std::string now = format_rfc3339(Clock::now());
  std::deque<LogRow> rows;
  for (const auto& e : events) rows.emplace_back(e);
  auto nullable = [](std::optional<std::string_view> v) { return v ? db::Param(*v) : db::Param(nullptr); };
  if (db_->backend() == db::Backend::kSqlite) {
    db_->write_platform([&](db::Tx& tx) {
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
    });
    return;
  }
  // PostgreSQL: COPY, about a fifth quicker than INSERT ... SELECT FROM unnest(...) ON CONFLICT. COPY has no
  // ON CONFLICT, so the ids already logged (a batch redelivered after its mark failed) are looked up under
  // the log's lock and their lines left out. The COPY text and the ids' array are built before the lock (it
  // serialises every relay). An id repeated within the batch gets one line, the first one's.
  std::string data, ids = "{";
  data.reserve(events.size() * 256 + [&] {
    size_t n = 0;
    for (const auto& r : rows) n += r.payload.size() + r.payload.size() / 16;
    return n;
  }());
  std::vector<std::pair<size_t, size_t>> lines;             // [begin, end) in data, in batch order
  std::unordered_map<std::string_view, size_t> line_of_id;  // id -> index in lines
  lines.reserve(events.size());
  line_of_id.reserve(events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    const db::OutboxEvent& e = events[i];
    if (!line_of_id.emplace(e.id, lines.size()).second) continue;
    append_array_item(ids, e.id);
    const size_t begin = data.size();
    append_copy_field(data, e.id);
    append_copy_field(data, e.tenant_id);
    append_copy_field(data, e.type);
    append_copy_field(data, e.schema);
    append_copy_field(data, rows[i].subject);
    append_copy_field(data, rows[i].actor);
    append_copy_field(data, rows[i].payload);
    append_copy_field(data, e.created_at);
    append_copy_field(data, now);
    data.back() = '\n';
    lines.emplace_back(begin, data.size());
  }
  ids += "}";
  db_->write_platform([&](db::Tx& tx) {
    tx.query("SELECT pg_advisory_xact_lock(7305730573057305)");
    const db::Result logged = tx.query("SELECT id FROM cdx_db.events WHERE id = ANY($1::text[])", {ids});
    std::string_view input = data;
    std::string rest;  // the lines not yet logged, when some are
    if (!logged.empty()) {
      std::vector<bool> skip(lines.size(), false);
      for (const auto& row : logged.rows)
        if (auto it = line_of_id.find(row.text(0)); it != line_of_id.end()) skip[it->second] = true;
      rest.reserve(data.size());
      for (size_t l = 0; l < lines.size(); ++l)
        if (!skip[l]) rest.append(data, lines[l].first, lines[l].second - lines[l].first);
      input = rest;
    }
    if (!input.empty())
      tx.copy_in(
          "COPY cdx_db.events (id, tenant_id, type, source, subject, actor, payload, created_at, "
          "recorded_at) "
          "FROM STDIN",
          input);
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
