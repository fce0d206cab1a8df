#include "webhooks/store.hpp"

#include "common/clock.hpp"
#include "common/ids.hpp"

#include <cstdio>
#include <deque>
#include <map>

namespace cdx::webhooks {

using nlohmann::json;

namespace {

constexpr const char* kEndpointColumns =
    "id, tenant_id, url, description, event_types, enabled, disabled_reason, secret, secret_kek, "
    "previous_secret, "
    "previous_secret_kek, previous_until, failing_since, created_at, updated_at";

EndpointRow endpoint_from(const db::Row& r) {
  EndpointRow e;
  e.id = r.text(0);
  e.tenant_id = r.text(1);
  e.url = r.text(2);
  e.description = r.opt_text(3).value_or("");
  json types = json::parse(r.text(4), nullptr, false);
  if (types.is_array())
    for (const auto& t : types)
      if (t.is_string()) e.event_types.push_back(t.get<std::string>());
  e.enabled = r.integer(5) != 0;
  e.disabled_reason = r.opt_text(6).value_or("");
  e.secret = r.text(7);
  e.secret_kek = r.text(8);
  e.previous_secret = r.opt_text(9).value_or("");
  e.previous_secret_kek = r.opt_text(10).value_or("");
  e.previous_until = r.opt_integer(11).value_or(0);
  e.failing_since = r.opt_integer(12);
  e.created_at = r.text(13);
  e.updated_at = r.text(14);
  return e;
}

std::string ms_time(int64_t ms) { return format_rfc3339(SysTime(std::chrono::milliseconds(ms))); }

// "$n, $n+1, …" for values, appended to params.
std::string in_list(db::Params& params, const std::vector<std::string>& values) {
  std::string out;
  for (const auto& v : values) {
    params.emplace_back(v);
    out += (out.empty() ? "$" : ", $") + std::to_string(params.size());
  }
  return out;
}

}  // namespace

json to_json(const EndpointRow& e) {
  return {{"id", e.id},
          {"url", e.url},
          {"event_types", e.event_types},
          {"description", e.description.empty() ? json(nullptr) : json(e.description)},
          {"enabled", e.enabled},
          {"disabled_reason", e.disabled_reason.empty() ? json(nullptr) : json(e.disabled_reason)},
          {"created_at", e.created_at},
          {"updated_at", e.updated_at}};
}

void Store::insert_endpoint(db::Tx& tx, const EndpointRow& e) {
  const std::string types = json(e.event_types).dump();
  tx.query(
      std::string("INSERT INTO cdx_db.webhook_endpoints (") + kEndpointColumns +
          ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
      {e.id, e.tenant_id, e.url, e.description.empty() ? db::Param(nullptr) : db::Param(e.description), types,
       e.enabled, e.disabled_reason.empty() ? db::Param(nullptr) : db::Param(e.disabled_reason), e.secret,
       e.secret_kek, e.previous_secret.empty() ? db::Param(nullptr) : db::Param(e.previous_secret),
       e.previous_secret_kek.empty() ? db::Param(nullptr) : db::Param(e.previous_secret_kek),
       e.previous_until, e.failing_since, e.created_at, e.updated_at});
}

std::optional<EndpointRow> Store::find_endpoint(db::Tx& tx, const std::string& tenant_id,
                                                const std::string& id) {
  auto r = tx.query(std::string("SELECT ") + kEndpointColumns +
                        " FROM cdx_db.webhook_endpoints WHERE tenant_id = $1 AND id = $2",
                    {tenant_id, id});
  if (r.empty()) return std::nullopt;
  return endpoint_from(r.rows[0]);
}

std::vector<EndpointRow> Store::list_endpoints(db::Tx& tx, const std::string& tenant_id, int limit,
                                               const std::optional<std::string>& before_id) {
  std::string sql =
      std::string("SELECT ") + kEndpointColumns + " FROM cdx_db.webhook_endpoints WHERE tenant_id = $1";
  db::Params p{tenant_id};
  if (before_id) {
    sql += " AND id < $2";
    p.emplace_back(*before_id);
  }
  sql += " ORDER BY id DESC LIMIT " + std::to_string(limit + 1);
  std::vector<EndpointRow> out;
  for (const auto& r : tx.query(sql, p).rows) out.push_back(endpoint_from(r));
  return out;
}

void Store::update_endpoint(db::Tx& tx, const EndpointRow& e) {
  const std::string types = json(e.event_types).dump();
  tx.query(
      "UPDATE cdx_db.webhook_endpoints SET url = $3, description = $4, event_types = $5, enabled = $6, "
      "disabled_reason = $7, secret = $8, secret_kek = $9, previous_secret = $10, previous_secret_kek = $11, "
      "previous_until = $12, failing_since = $13, updated_at = $14 WHERE tenant_id = $1 AND id = $2",
      {e.tenant_id, e.id, e.url, e.description.empty() ? db::Param(nullptr) : db::Param(e.description), types,
       e.enabled, e.disabled_reason.empty() ? db::Param(nullptr) : db::Param(e.disabled_reason), e.secret,
       e.secret_kek, e.previous_secret.empty() ? db::Param(nullptr) : db::Param(e.previous_secret),
       e.previous_secret_kek.empty() ? db::Param(nullptr) : db::Param(e.previous_secret_kek),
       e.previous_until, e.failing_since, e.updated_at});
}

bool Store::delete_endpoint(db::Tx& tx, const std::string& tenant_id, const std::string& id) {
  const bool gone =
      tx.query("DELETE FROM cdx_db.webhook_endpoints WHERE tenant_id = $1 AND id = $2", {tenant_id, id})
          .affected > 0;
  if (gone) {
    tx.query("DELETE FROM cdx_db.webhook_attempts WHERE tenant_id = $1 AND endpoint_id = $2",
             {tenant_id, id});
    tx.query("DELETE FROM cdx_db.webhook_deliveries WHERE tenant_id = $1 AND endpoint_id = $2",
             {tenant_id, id});
  }
  return gone;
}

std::vector<Store::Route> Store::routes(db::Tx& tx, const std::string& tenant_id) {
  routes_read_.fetch_add(1, std::memory_order_relaxed);
  std::vector<Route> out;
  for (const auto& r :
       tx.query("SELECT id, created_at, event_types FROM cdx_db.webhook_endpoints WHERE tenant_id = $1 "
                "AND enabled = 1 ORDER BY id",
                {tenant_id})
           .rows) {
    Route route{r.text(0), r.text(1), {}};
    json t = json::parse(r.text(2), nullptr, false);
    if (t.is_array())
      for (const auto& v : t)
        if (v.is_string()) route.event_types.push_back(v.get<std::string>());
    out.push_back(std::move(route));
  }
  return out;
}

void Store::set_failing(db::Tx& tx, const std::string& tenant_id, const std::string& id,
                        std::optional<int64_t> since) {
  tx.query("UPDATE cdx_db.webhook_endpoints SET failing_since = $3 WHERE tenant_id = $1 AND id = $2",
           {tenant_id, id, since});
}

void Store::disable(db::Tx& tx, const std::string& tenant_id, const std::string& id,
                    const std::string& reason) {
  tx.query(
      "UPDATE cdx_db.webhook_endpoints SET enabled = 0, disabled_reason = $3, updated_at = $4 "
      "WHERE tenant_id = $1 AND id = $2",
      {tenant_id, id, reason, format_rfc3339(Clock::now())});
}

std::vector<std::string> Store::insert_deliveries(db::Tx& tx, const std::vector<NewDelivery>& rows,
                                                  int64_t due_ms) {
  if (rows.empty()) return {};
  const std::string now = format_rfc3339(Clock::now());
  constexpr size_t kRows = 300;  // 11 parameters a row
  std::deque<std::string> ids;
  for (size_t at = 0; at < rows.size(); at += kRows) {
    std::string sql =
        "INSERT INTO cdx_db.webhook_deliveries (id, tenant_id, endpoint_id, msg_id, event_id, event_type, "
        "payload, "
        "status, tries, next_attempt_at, created_at, updated_at) VALUES ";
    db::Params p;
    const size_t end = std::min(rows.size(), at + kRows);
    for (size_t i = at; i < end; ++i) {
      const NewDelivery& d = rows[i];
      const std::string& id = ids.emplace_back(new_uuid_v7());
      const size_t n = p.size();
      sql += i == at ? "(" : ", (";
      for (size_t k = 1; k <= 10; ++k) {
        if (k == 8) sql += "'pending', 0, ";
        sql += "$" + std::to_string(n + k) + (k < 10 ? ", " : "");
      }
      sql += ")";
      p.insert(p.end(), {db::Param(id), db::Param(d.tenant_id), db::Param(d.endpoint_id), db::Param(d.msg_id),
                         db::Param(d.event_id), db::Param(d.event_type), db::Param(d.payload),
                         db::Param(due_ms), db::Param(now), db::Param(now)});
    }
    tx.query(sql, p);
  }
  return {ids.begin(), ids.end()};
}

namespace {

// Due deliveries: pending and next_attempt_at passed (a claim moves next_attempt_at to its lease's end, so
// this is the partial index's range), skipping the endpoints and tenants this sender holds at their bound.
std::string due_sql(db::Params& p, const Room& room, int64_t now) {
  // Params view their text: bound to the room's own keys, which outlive the query.
  auto full = [&](const std::map<std::string, int>& load, int bound) {
    std::string list;
    for (const auto& [key, n] : load) {
      if (n < bound) continue;
      p.emplace_back(key);
      list += (list.empty() ? "$" : ", $") + std::to_string(p.size());
    }
    return list;
  };
  std::string sql =
      "SELECT id, endpoint_id, tenant_id, next_attempt_at FROM cdx_db.webhook_deliveries WHERE status = "
      "'pending' AND next_attempt_at IS NOT NULL";
  // A delivery replayed while an attempt of it is in flight is due once that attempt is recorded (or its
  // lease runs out), not before: never two attempts of one delivery at once.
  p.emplace_back(now);
  const std::string at = "$" + std::to_string(p.size());
  sql += " AND next_attempt_at <= " + at + " AND (lease_until IS NULL OR lease_until <= " + at + ")";
  if (const std::string endpoints = full(room.endpoint_load, room.per_endpoint); !endpoints.empty())
    sql += " AND endpoint_id NOT IN (" + endpoints + ")";
  if (const std::string tenants = full(room.tenant_load, room.per_tenant); !tenants.empty())
    sql += " AND tenant_id NOT IN (" + tenants + ")";
  return sql + " ORDER BY next_attempt_at";
}

}  // namespace

std::optional<int64_t> Store::next_due(db::Tx& tx, std::optional<int64_t> after) {
  // The first row of the partial index past `after`: no bounds to skip, so it never walks the due rows of
  // an endpoint at its bound. A delivery replayed while an attempt of it is in flight is left out (the
  // attempt's recording wakes the sender).
  std::string sql =
      "SELECT next_attempt_at FROM cdx_db.webhook_deliveries WHERE status = 'pending' AND next_attempt_at IS "
      "NOT NULL AND (lease_until IS NULL OR next_attempt_at >= lease_until)";
  db::Params p;
  if (after) {
    p.emplace_back(*after);
    sql += " AND next_attempt_at > $1";
  }
  auto r = tx.query(sql + " ORDER BY next_attempt_at LIMIT 1", p);
  if (r.empty()) return std::nullopt;
  return r.rows[0].integer(0);
}

void Store::release_leases(db::Tx& tx, int64_t now_ms) {
  tx.query(
      "UPDATE cdx_db.webhook_deliveries SET lease_until = NULL, next_attempt_at = $1 WHERE status = "
      "'pending' "
      "AND lease_until IS NOT NULL",
      {now_ms});
}

std::vector<Claimed> Store::claim(db::Tx& tx, int64_t now_ms, int64_t lease_ms, const Room& room,
                                  bool* more) {
  if (more) *more = false;
  if (room.total <= 0) return {};
  // Candidates in due order, locked (PostgreSQL) so that no other replica takes them meanwhile; then only
  // what fits the free slots of its endpoint and tenant is leased. The rest stays due, unleased, for the
  // next claim (here or on another replica): a leased delivery always starts at once, so its lease cannot
  // run out while it waits for a slot.
  db::Params p;
  // At most the room (and a page): every candidate locked is one another replica skips.
  const size_t limit = std::min(room.total, 256);
  std::string pick = due_sql(p, room, now_ms) + " LIMIT " + std::to_string(limit);
  if (tx.backend() == db::Backend::kPostgres) pick += " FOR UPDATE SKIP LOCKED";
  std::map<std::string, int> endpoints = room.endpoint_load, tenants = room.tenant_load;
  std::vector<std::string> chosen;
  const auto candidates = tx.query(pick, p).rows;
  size_t skipped = 0;
  for (const auto& r : candidates) {
    int& e = endpoints[r.text(1)];
    int& t = tenants[r.text(2)];
    if (e >= room.per_endpoint || t >= room.per_tenant) {
      ++skipped;
      continue;
    }
    ++e, ++t;
    chosen.push_back(r.text(0));
  }
  // Cut off by the limit, every candidate taken: more may be due now. (When some waited for a slot, the
  // next claim would walk past them again; the attempts that free their slots wake the sender instead.)
  if (more) *more = candidates.size() >= limit && skipped == 0;
  if (chosen.empty()) return {};
  db::Params u{lease_ms};
  const std::string sql =
      "UPDATE cdx_db.webhook_deliveries SET lease_until = $1, next_attempt_at = $1 WHERE id IN (" +
      in_list(u, chosen) + ") RETURNING id, tenant_id, endpoint_id, msg_id, payload, tries";
  std::vector<Claimed> out;
  for (const auto& r : tx.query(sql, u).rows)
    out.push_back({r.text(0), r.text(1), r.text(2), r.text(3), r.text(4), r.integer(5), lease_ms});
  return out;
}

size_t Store::record(db::Tx& tx, const std::vector<Attempt>& attempts, std::vector<bool>* recorded) {
  const std::string now = format_rfc3339(Clock::now());
  size_t n = 0;
  if (recorded) recorded->assign(attempts.size(), false);
  std::vector<const Attempt*> mine;
  for (size_t i = 0; i < attempts.size(); ++i) {
    const Attempt& a = attempts[i];
    // Fenced by the lease: a delivery deleted (endpoint, tenant), replayed after its lease ran out, or
    // claimed again keeps its state, and this attempt leaves no row. A replay asked for while this attempt
    // was in flight (next_attempt_at moved before the lease's end, requeue()) wins over the attempt's own
    // schedule: pending again, due at once, with a fresh schedule.
    const bool ours =
        tx.query(
              "UPDATE cdx_db.webhook_deliveries SET "
              "status = CASE WHEN next_attempt_at < lease_until THEN 'pending' ELSE $2 END, "
              "tries = CASE WHEN next_attempt_at < lease_until THEN 0 ELSE $3 END, "
              "next_attempt_at = CASE WHEN next_attempt_at < lease_until THEN next_attempt_at ELSE $4 END, "
              "lease_until = NULL, last_attempt_at = $5, last_status_code = $6, last_error = $7, "
              "updated_at = $8 WHERE id = $1 AND lease_until = $9",
              {a.delivery_id, a.status, a.tries,
               a.status == "pending" ? db::Param(a.next_attempt_at) : db::Param(nullptr), a.attempted_at,
               a.status_code ? db::Param(a.status_code) : db::Param(nullptr),
               a.error.empty() ? db::Param(nullptr) : db::Param(a.error), now, a.lease})
            .affected > 0;
    if (!ours) continue;
    ++n;
    if (recorded) (*recorded)[i] = true;
    mine.push_back(&a);
  }
  // The attempt rows of those recorded, a few hundred a statement (one round trip, not one each).
  constexpr size_t kRows = 100;  // 9 parameters a row
  std::deque<std::string> ids;   // the Params view them
  for (size_t at = 0; at < mine.size(); at += kRows) {
    std::string sql =
        "INSERT INTO cdx_db.webhook_attempts (id, delivery_id, tenant_id, endpoint_id, attempted_at, "
        "status_code, latency_ms, response, error) VALUES ";
    db::Params p;
    for (size_t i = at; i < std::min(mine.size(), at + kRows); ++i) {
      const Attempt& a = *mine[i];
      const size_t k = p.size();
      sql += i == at ? "(" : ", (";
      for (size_t j = 1; j <= 9; ++j) sql += "$" + std::to_string(k + j) + (j < 9 ? ", " : ")");
      p.insert(p.end(),
               {db::Param(ids.emplace_back(new_uuid_v7())), db::Param(a.delivery_id), db::Param(a.tenant_id),
                db::Param(a.endpoint_id), db::Param(a.attempted_at),
                a.status_code ? db::Param(a.status_code) : db::Param(nullptr), db::Param(a.latency_ms),
                a.response.empty() ? db::Param(nullptr) : db::Param(a.response),
                a.error.empty() ? db::Param(nullptr) : db::Param(a.error)});
    }
    tx.query(sql, p);
  }
  return n;
}

void Store::fail_undeliverable(db::Tx& tx, const Claimed& d, const std::string& why) {
  tx.query(
      "UPDATE cdx_db.webhook_deliveries SET status = 'failed', next_attempt_at = NULL, lease_until = NULL, "
      "last_error = $2, updated_at = $3 WHERE id = $1 AND lease_until = $4",
      {d.id, why, format_rfc3339(Clock::now()), d.lease});
}

Store::Requeue Store::requeue(db::Tx& tx, const std::string& tenant_id, const std::string& id,
                              int64_t now_ms) {
  // An attempt in flight (its lease holds) keeps its lease, so its outcome is still recorded and nothing is
  // sent twice at once; next_attempt_at before the lease's end marks the replay, which record() turns into
  // a new attempt, due at once, after it. Otherwise (idle, finished, or a lease that ran out: no one's) the
  // delivery is pending again now, with a fresh schedule.
  auto r = tx.query(
      "UPDATE cdx_db.webhook_deliveries SET status = 'pending', next_attempt_at = $3, updated_at = $4, "
      "tries = CASE WHEN lease_until > $3 THEN tries ELSE 0 END, "
      "lease_until = CASE WHEN lease_until > $3 THEN lease_until ELSE NULL END "
      "WHERE tenant_id = $1 AND id = $2 RETURNING lease_until",
      {tenant_id, id, now_ms, format_rfc3339(Clock::now())});
  if (r.empty()) return Requeue::kNotFound;
  return r.rows[0].is_null(0) ? Requeue::kNow : Requeue::kAfterTheAttemptInFlight;
}

size_t Store::prune(db::Tx& tx, int64_t cutoff_ms, int limit) {
  // Ids are UUIDv7, ordered by creation time: the range below the cutoff's id is read on the primary key.
  char bound[40];
  std::snprintf(bound, sizeof bound, "%08llx-%04llx-0000-0000-000000000000",
                static_cast<unsigned long long>(cutoff_ms >> 16) & 0xffffffffULL,
                static_cast<unsigned long long>(cutoff_ms) & 0xffffULL);
  auto rows =
      tx.query(
            "SELECT id, tenant_id FROM cdx_db.webhook_deliveries WHERE id < $1 AND status <> 'pending' "
            "AND updated_at < $2 ORDER BY id LIMIT " +
                std::to_string(limit),
            {std::string(bound), ms_time(cutoff_ms)})
          .rows;
  if (rows.empty()) return 0;
  std::map<std::string, std::vector<std::string>> by_tenant;
  for (const auto& r : rows) by_tenant[r.text(1)].push_back(r.text(0));
  for (const auto& [tenant, ids] : by_tenant) {
    db::Params p{tenant};
    const std::string list = in_list(p, ids);
    tx.query("DELETE FROM cdx_db.webhook_attempts WHERE tenant_id = $1 AND delivery_id IN (" + list + ")", p);
    tx.query("DELETE FROM cdx_db.webhook_deliveries WHERE tenant_id = $1 AND id IN (" + list + ")", p);
  }
  return rows.size();
}

namespace {

constexpr const char* kDeliveryColumns =
    "id, endpoint_id, msg_id, event_id, event_type, status, tries, next_attempt_at, last_attempt_at, "
    "last_status_code, last_error, created_at, updated_at";

json delivery_json(const db::Row& r) {
  auto opt = [&](size_t i) { return r.is_null(i) ? json(nullptr) : json(r.text(i)); };
  return {{"id", r.text(0)},
          {"endpoint_id", r.text(1)},
          {"webhook_id", r.text(2)},
          {"event_id", r.text(3)},
          {"event_type", r.text(4)},
          {"status", r.text(5)},
          {"tries", r.integer(6)},
          {"next_attempt_at", r.is_null(7) ? json(nullptr) : json(ms_time(r.integer(7)))},
          {"last_attempt_at", opt(8)},
          {"last_status_code", r.is_null(9) ? json(nullptr) : json(r.integer(9))},
          {"last_error", opt(10)},
          {"created_at", r.text(11)},
          {"updated_at", r.text(12)},
          {"attempts", json::array()}};
}

void add_attempts(db::Tx& tx, const std::string& tenant_id, json& rows) {
  if (rows.empty()) return;
  db::Params p{tenant_id};
  std::vector<std::string> ids;
  for (const auto& d : rows) ids.push_back(d["id"].get<std::string>());
  std::map<std::string, json*> by_id;
  for (auto& d : rows) by_id[d["id"].get<std::string>()] = &d;
  const std::string sql =
      "SELECT delivery_id, attempted_at, status_code, latency_ms, response, error FROM "
      "cdx_db.webhook_attempts "
      "WHERE tenant_id = $1 AND delivery_id IN (" +
      in_list(p, ids) + ") ORDER BY attempted_at, id";
  for (const auto& r : tx.query(sql, p).rows) {
    auto it = by_id.find(r.text(0));
    if (it == by_id.end()) continue;
    (*it->second)["attempts"].push_back({{"attempted_at", r.text(1)},
                                         {"status_code", r.is_null(2) ? json(nullptr) : json(r.integer(2))},
                                         {"latency_ms", r.integer(3)},
                                         {"response", r.is_null(4) ? json(nullptr) : json(r.text(4))},
                                         {"error", r.is_null(5) ? json(nullptr) : json(r.text(5))}});
  }
}

}  // namespace

json Store::list_deliveries(db::Tx& tx, const std::string& tenant_id, const std::string& endpoint_id,
                            int limit, const std::optional<std::string>& before_id,
                            const std::optional<std::string>& status) {
  std::string sql = std::string("SELECT ") + kDeliveryColumns +
                    " FROM cdx_db.webhook_deliveries WHERE tenant_id = $1 AND endpoint_id = $2";
  db::Params p{tenant_id, endpoint_id};
  if (status) {
    p.emplace_back(*status);
    sql += " AND status = $" + std::to_string(p.size());
  }
  if (before_id) {
    p.emplace_back(*before_id);
    sql += " AND id < $" + std::to_string(p.size());
  }
  sql += " ORDER BY id DESC LIMIT " + std::to_string(limit + 1);
  json rows = json::array();
  for (const auto& r : tx.query(sql, p).rows) rows.push_back(delivery_json(r));
  add_attempts(tx, tenant_id, rows);
  return rows;
}

std::optional<json> Store::find_delivery(db::Tx& tx, const std::string& tenant_id, const std::string& id) {
  auto r = tx.query(std::string("SELECT ") + kDeliveryColumns +
                        " FROM cdx_db.webhook_deliveries WHERE tenant_id = $1 AND id = $2",
                    {tenant_id, id});
  if (r.empty()) return std::nullopt;
  json rows = json::array({delivery_json(r.rows[0])});
  add_attempts(tx, tenant_id, rows);
  return rows[0];
}

void Store::purge_tenant(db::Tx& tx, const std::string& tenant_id) {
  tx.query("DELETE FROM cdx_db.webhook_attempts WHERE tenant_id = $1", {tenant_id});
  tx.query("DELETE FROM cdx_db.webhook_deliveries WHERE tenant_id = $1", {tenant_id});
  tx.query("DELETE FROM cdx_db.webhook_endpoints WHERE tenant_id = $1", {tenant_id});
}

db::Migration migration(int version) {
  return {version,
          "webhooks: endpoints, deliveries, attempts",
          R"SQL(
CREATE TABLE cdx_db.webhook_endpoints (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  url TEXT NOT NULL,
  description TEXT,
  event_types TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  disabled_reason TEXT,
  secret TEXT NOT NULL,
  secret_kek TEXT NOT NULL,
  previous_secret TEXT,
  previous_secret_kek TEXT,
  previous_until BIGINT NOT NULL DEFAULT 0,
  failing_since BIGINT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON cdx_db.webhook_endpoints (tenant_id, id);
CREATE TABLE cdx_db.webhook_deliveries (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  endpoint_id TEXT NOT NULL,
  msg_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  payload TEXT NOT NULL,
  status TEXT NOT NULL,
  tries BIGINT NOT NULL,
  next_attempt_at BIGINT,
  lease_until BIGINT,
  last_attempt_at TEXT,
  last_status_code BIGINT,
  last_error TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON cdx_db.webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON cdx_db.webhook_deliveries (tenant_id, endpoint_id, id);
CREATE TABLE cdx_db.webhook_attempts (
  id TEXT PRIMARY KEY,
  delivery_id TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  endpoint_id TEXT NOT NULL,
  attempted_at TEXT NOT NULL,
  status_code BIGINT,
  latency_ms BIGINT NOT NULL,
  response TEXT,
  error TEXT
);
CREATE INDEX webhook_attempts_delivery ON cdx_db.webhook_attempts (tenant_id, delivery_id, attempted_at);
CREATE INDEX webhook_attempts_endpoint ON cdx_db.webhook_attempts (tenant_id, endpoint_id);
)SQL",
          {"cdx_db.webhook_endpoints"}};
}

}  // namespace cdx::webhooks
