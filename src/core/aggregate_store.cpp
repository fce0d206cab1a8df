#include "core/aggregate_store.hpp"

namespace cdx::core {

namespace {

db::Param text_or_null(const std::string& s) { return s.empty() ? db::Param(nullptr) : db::Param(s); }

DealState deal_from_row(const db::Row& r, size_t at) {
  DealState d;
  d.id = r.text(at);
  d.status = r.text(at + 1);
  if (!r.is_null(at + 2)) d.amount = r.integer(at + 2);
  d.currency = r.opt_text(at + 3).value_or("");
  d.closed_at = r.opt_text(at + 4).value_or("");
  return d;
}

void insert_deals(db::Tx& tx, const std::string& tenant_id, const std::vector<DealState>& deals) {
  constexpr size_t kRows = 400;  // 6 parameters a row
  for (size_t at = 0; at < deals.size(); at += kRows) {
    std::string sql =
        "INSERT INTO cdx_db.aggregate_deals (tenant_id, deal_id, status, amount, currency, closed_at) "
        "VALUES ";
    db::Params params;
    const size_t end = std::min(deals.size(), at + kRows);
    for (size_t i = at; i < end; ++i) {
      const DealState& d = deals[i];
      const size_t n = params.size();
      sql += i == at ? "(" : ", (";
      for (size_t k = 1; k <= 6; ++k) sql += (k == 1 ? "$" : ", $") + std::to_string(n + k);
      sql += ")";
      params.insert(params.end(), {db::Param(tenant_id), db::Param(d.id), db::Param(d.status),
                                   d.amount ? db::Param(*d.amount) : db::Param(nullptr),
                                   text_or_null(d.currency), text_or_null(d.closed_at)});
    }
    tx.query(sql, params);
  }
}

}  // namespace

std::set<std::string> AggregateStore::existing_tenants(db::Tx& tx, const std::set<std::string>& ids) {
  std::set<std::string> out;
  if (ids.empty()) return out;
  std::string sql = "SELECT id FROM cdx_db.tenants WHERE id IN (";
  db::Params params;
  for (const auto& id : ids) {
    params.push_back(id);
    sql += (params.size() == 1 ? "$" : ", $") + std::to_string(params.size());
  }
  sql += ")";
  for (const auto& r : tx.query(sql, params).rows) out.insert(r.text(0));
  return out;
}

std::optional<DealState> AggregateStore::deal(db::Tx& tx, const std::string& tenant_id,
                                              const std::string& deal_id) {
  auto res = tx.query(
      "SELECT deal_id, status, amount, currency, closed_at FROM cdx_db.aggregate_deals "
      "WHERE tenant_id = $1 AND deal_id = $2",
      {tenant_id, deal_id});
  if (res.empty()) return std::nullopt;
  return deal_from_row(res.rows[0], 0);
}

void AggregateStore::put_deal(db::Tx& tx, const std::string& tenant_id, const DealState& d) {
  tx.query(
      "INSERT INTO cdx_db.aggregate_deals (tenant_id, deal_id, status, amount, currency, closed_at) "
      "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, deal_id) DO UPDATE SET status = "
      "excluded.status, "
      "amount = excluded.amount, currency = excluded.currency, closed_at = excluded.closed_at",
      {tenant_id, d.id, d.status, d.amount ? db::Param(*d.amount) : db::Param(nullptr),
       text_or_null(d.currency), text_or_null(d.closed_at)});
}

void AggregateStore::delete_deal(db::Tx& tx, const std::string& tenant_id, const std::string& deal_id) {
  tx.query("DELETE FROM cdx_db.aggregate_deals WHERE tenant_id = $1 AND deal_id = $2", {tenant_id, deal_id});
}

void AggregateStore::add_counters(db::Tx& tx, const std::string& tenant_id,
                                  const std::map<std::string, int64_t>& add, const std::string& now) {
  for (const auto& [name, delta] : add) {
    if (delta == 0) continue;
    tx.query(
        "INSERT INTO cdx_db.tenant_counters AS c (tenant_id, name, value, updated_at) VALUES ($1, $2, $3, "
        "$4) "
        "ON CONFLICT (tenant_id, name) DO UPDATE SET value = c.value + excluded.value, updated_at = "
        "excluded.updated_at",
        {tenant_id, name, delta, now});
  }
}

void AggregateStore::add_hours(db::Tx& tx, const std::string& tenant_id,
                               const std::map<std::string, int64_t>& hours) {
  for (const auto& [hour, n] : hours)
    tx.query(
        "INSERT INTO cdx_db.event_hours AS h (tenant_id, hour, n) VALUES ($1, $2, $3) "
        "ON CONFLICT (tenant_id, hour) DO UPDATE SET n = h.n + excluded.n",
        {tenant_id, hour, n});
}

void AggregateStore::prune_hours(db::Tx& tx, const std::string& tenant_id, const std::string& hour) {
  tx.query("DELETE FROM cdx_db.event_hours WHERE tenant_id = $1 AND hour < $2", {tenant_id, hour});
}

void AggregateStore::delete_tenant(db::Tx& tx, const std::string& tenant_id) {
  for (const char* table : {"tenant_counters", "aggregate_deals", "event_hours"})
    tx.query(std::string("DELETE FROM cdx_db.") + table + " WHERE tenant_id = $1", {tenant_id});
}

AggregateStore::Counters AggregateStore::read(const std::string& tenant_id, const std::string& since_hour,
                                              const std::string& today, const std::string& window_from) {
  // One statement (one round trip on PostgreSQL): the counters, then the sums under names no counter has.
  static const std::string kSql =
      "SELECT name, value, updated_at FROM cdx_db.tenant_counters WHERE tenant_id = $1 "
      "UNION ALL SELECT '#events', CAST(COALESCE(SUM(n), 0) AS BIGINT), '' FROM cdx_db.event_hours "
      "WHERE tenant_id = $1 AND hour >= $2 "
      "UNION ALL SELECT '#today', CAST(COALESCE(SUM(CASE WHEN day = $3 THEN calls ELSE 0 END), 0) AS "
      "BIGINT), '' "
      "FROM cdx_db.usage_daily WHERE tenant_id = $1 AND day >= $4 AND day <= $3 "
      "UNION ALL SELECT '#window', CAST(COALESCE(SUM(calls), 0) AS BIGINT), '' FROM cdx_db.usage_daily "
      "WHERE tenant_id = $1 AND day >= $4 AND day <= $3";
  return db_->read_platform([&](db::Tx& tx) {
    Counters out;
    for (const auto& r : tx.query(kSql, {tenant_id, since_hour, today, window_from}).rows) {
      const std::string name = r.text(0);
      const int64_t value = r.integer(1);
      if (name == "#events") {
        out.events = value;
      } else if (name == "#today") {
        out.calls_today = value;
      } else if (name == "#window") {
        out.calls_window = value;
      } else {
        out.values[name] = value;
        if (r.text(2) > out.updated_at) out.updated_at = r.text(2);
      }
    }
    return out;
  });
}

AggregateStore::Platform AggregateStore::read_platform(const std::string& since_hour,
                                                       const std::string& today,
                                                       const std::string& window_from) {
  // Tenants by status from the status index (a thousand rows or ten); the rest by the platform rows' keys.
  static const std::string kSql =
      "SELECT 't', status, COUNT(*) FROM cdx_db.tenants GROUP BY status "
      "UNION ALL SELECT 'h', hour, n FROM cdx_db.event_hours WHERE tenant_id = '*' AND hour >= $1 "
      "UNION ALL SELECT 'd', day, calls FROM cdx_db.usage_daily WHERE tenant_id = '*' AND day >= $3 AND day "
      "<= $2";
  return db_->read_platform([&](db::Tx& tx) {
    Platform out;
    for (const auto& r : tx.query(kSql, {since_hour, today, window_from}).rows) {
      const std::string kind = r.text(0), key = r.text(1);
      const int64_t n = r.integer(2);
      if (kind == "t") {
        out.tenants[key] = n;
      } else if (kind == "h") {
        out.hours[key] = n;
      } else {
        out.calls_window += n;
        if (key == today) out.calls_today += n;
      }
    }
    return out;
  });
}

std::vector<std::string> AggregateStore::tenant_ids() {
  return db_->read_platform([&](db::Tx& tx) {
    std::vector<std::string> out;
    for (const auto& r : tx.query("SELECT id FROM cdx_db.tenants ORDER BY id").rows) out.push_back(r.text(0));
    return out;
  });
}

int64_t AggregateStore::replace_all(const std::map<std::string, std::map<std::string, int64_t>>& counters,
                                    const std::map<std::string, std::vector<DealState>>& deals,
                                    const std::string& since_hour, const std::string& cursor_name,
                                    const std::string& now) {
  return db_->write_platform([&](db::Tx& tx) {
    // First: a batch of the subscriber in flight (it holds the cursor's row) commits before this goes on, and
    // one starting later skips the locked row, then reads the moved cursor (SQLite: one writer at a time).
    if (tx.backend() == db::Backend::kPostgres)
      tx.query("SELECT seq FROM cdx_db.event_cursors WHERE name = $1 FOR UPDATE", {cursor_name});
    tx.query("DELETE FROM cdx_db.tenant_counters");
    tx.query("DELETE FROM cdx_db.aggregate_deals");
    tx.query("DELETE FROM cdx_db.event_hours");
    for (const auto& [tenant_id, values] : counters)
      for (const auto& [name, value] : values)
        tx.query(
            "INSERT INTO cdx_db.tenant_counters (tenant_id, name, value, updated_at) VALUES ($1, $2, $3, $4)",
            {tenant_id, name, value, now});
    for (const auto& [tenant_id, list] : deals) insert_deals(tx, tenant_id, list);
    // created_at is RFC 3339 UTC: its first 13 characters are the hour bucket.
    tx.query(
        "INSERT INTO cdx_db.event_hours (tenant_id, hour, n) SELECT e.tenant_id, SUBSTR(e.created_at, 1, "
        "13), "
        "COUNT(*) FROM cdx_db.events e WHERE e.tenant_id <> '' AND e.created_at >= $1 "
        "AND EXISTS (SELECT 1 FROM cdx_db.tenants t WHERE t.id = e.tenant_id) "
        "GROUP BY e.tenant_id, SUBSTR(e.created_at, 1, 13)",
        {since_hour});
    tx.query(
        "INSERT INTO cdx_db.event_hours (tenant_id, hour, n) SELECT '*', SUBSTR(created_at, 1, 13), COUNT(*) "
        "FROM cdx_db.events WHERE created_at >= $1 GROUP BY SUBSTR(created_at, 1, 13)",
        {since_hour});
    const int64_t end = tx.query("SELECT COALESCE(MAX(seq), 0) FROM cdx_db.events").rows.at(0).integer(0);
    tx.query(
        "INSERT INTO cdx_db.event_cursors (name, seq, updated_at) VALUES ($1, $2, $3) "
        "ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at, last_error = "
        "NULL",
        {cursor_name, end, now});
    return end;
  });
}

}  // namespace cdx::core
