#include "core/store.hpp"

#include "common/clock.hpp"

namespace cdx::core {

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
