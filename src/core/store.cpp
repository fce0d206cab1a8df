#include "core/store.hpp"

#include "common/clock.hpp"
#include "http/pagination.hpp"

namespace cdx::core {

namespace {

constexpr const char* kTenantColumns = "id, slug, name, status, plan, settings, created_at, updated_at";
constexpr const char* kPlanColumns =
    "id, key, name, rate_limit_per_minute, max_users, max_api_keys, modules, created_at, updated_at";

Tenant tenant_from(const db::Row& r) {
  Tenant t;
  t.id = r.text(0);
  t.slug = r.text(1);
  t.name = r.text(2);
  t.status = r.text(3);
  t.plan = r.text(4);
  t.settings = nlohmann::json::parse(r.text(5), nullptr, false);
  if (t.settings.is_discarded()) t.settings = nlohmann::json::object();
  t.created_at = r.text(6);
  t.updated_at = r.text(7);
  return t;
}

Plan plan_from(const db::Row& r) {
  Plan p;
  p.id = r.text(0);
  p.key = r.text(1);
  p.name = r.text(2);
  p.rate_limit_per_minute = r.integer(3);
  p.max_users = r.integer(4);
  p.max_api_keys = r.integer(5);
  auto modules = nlohmann::json::parse(r.text(6), nullptr, false);
  if (modules.is_array())
    for (const auto& m : modules) p.modules.push_back(m.get<std::string>());
  p.created_at = r.text(7);
  p.updated_at = r.text(8);
  return p;
}

}  // namespace

std::optional<Tenant> Store::find_tenant(std::string_view id_or_slug) {
  return db_->read_platform([&](db::Tx& tx) -> std::optional<Tenant> {
    auto res = tx.query(std::string("SELECT ") + kTenantColumns + " FROM cdx_db.tenants WHERE id = $1 OR slug = $1",
                        {id_or_slug});
    if (res.empty()) return std::nullopt;
    return tenant_from(res.rows[0]);
  });
}

void Store::insert_tenant(const Tenant& t) {
  db_->write_platform([&](db::Tx& tx) {
    tx.query("INSERT INTO cdx_db.tenants (id, slug, name, status, plan, settings, created_at, updated_at) "
             "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
             {t.id, t.slug, t.name, t.status, t.plan, t.settings.dump(), t.created_at, t.updated_at});
  });
}

std::vector<Tenant> Store::list_tenants(const TenantFilter& f) {
  std::string sql = std::string("SELECT ") + kTenantColumns + " FROM cdx_db.tenants WHERE 1 = 1";
  db::Params params;
  std::string pattern;
  auto bind = [&](db::Param p) {
    params.push_back(p);
    return "$" + std::to_string(params.size());
  };
  if (f.status) sql += " AND status = " + bind(*f.status);
  if (f.plan) sql += " AND plan = " + bind(*f.plan);
  if (f.q) {
    pattern = http::like_pattern(*f.q);
    const std::string p = bind(pattern);
    sql += " AND (lower(name) LIKE " + p + " ESCAPE '\\' OR slug LIKE " + p + " ESCAPE '\\')";
  }
  if (f.after_id) sql += " AND id < " + bind(*f.after_id);
  sql += " ORDER BY id DESC LIMIT " + bind(static_cast<int64_t>(f.limit + 1));
  return db_->read_platform([&](db::Tx& tx) {
    std::vector<Tenant> out;
    for (const auto& r : tx.query(sql, params).rows) out.push_back(tenant_from(r));
    return out;
  });
}

std::optional<Tenant> Store::update_tenant(const std::string& id, const TenantPatch& patch) {
  return db_->write_platform([&](db::Tx& tx) -> std::optional<Tenant> {
    const std::string settings = patch.settings ? patch.settings->dump() : std::string();
    auto res = tx.query(
        "UPDATE cdx_db.tenants SET name = COALESCE($2, name), plan = COALESCE($3, plan), "
        "status = COALESCE($4, status), settings = COALESCE($5, settings), updated_at = $6 WHERE id = $1",
        {id, patch.name, patch.plan, patch.status, patch.settings ? db::Param(settings) : db::Param(nullptr),
         format_rfc3339(Clock::now())});
    if (res.affected == 0) return std::nullopt;
    auto row = tx.query(std::string("SELECT ") + kTenantColumns + " FROM cdx_db.tenants WHERE id = $1", {id});
    return tenant_from(row.rows.at(0));
  });
}

bool Store::delete_tenant(const std::string& id) {
  return db_->write_platform([&](db::Tx& tx) {
    tx.query("DELETE FROM cdx_db.usage_daily WHERE tenant_id = $1", {id});
    return tx.query("DELETE FROM cdx_db.tenants WHERE id = $1", {id}).affected > 0;
  });
}

void Store::add_usage(const std::vector<kit::Usage>& usage) {
  if (usage.empty()) return;
  db_->write_platform([&](db::Tx& tx) {
    for (const auto& u : usage)
      tx.query("INSERT INTO cdx_db.usage_daily AS u (tenant_id, day, key_id, calls) "
               "SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM cdx_db.tenants WHERE id = $1) "
               "ON CONFLICT (tenant_id, day, key_id) DO UPDATE SET calls = u.calls + excluded.calls",
               {u.tenant_id, u.day, u.key_id, u.calls});
  });
}

std::vector<std::pair<std::string, int64_t>> Store::usage_by_day(const std::string& tenant_id, const std::string& from,
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

std::vector<std::pair<std::string, int64_t>> Store::usage_by_key(const std::string& tenant_id, const std::string& from,
                                                                 const std::string& to) {
  return db_->read_platform([&](db::Tx& tx) {
    std::vector<std::pair<std::string, int64_t>> out;
    for (const auto& r : tx.query("SELECT key_id, SUM(calls) AS n FROM cdx_db.usage_daily WHERE tenant_id = $1 "
                                  "AND day >= $2 AND day <= $3 GROUP BY key_id ORDER BY n DESC, key_id",
                                  {tenant_id, from, to})
                             .rows)
      out.emplace_back(r.text(0), r.integer(1));
    return out;
  });
}

std::vector<Plan> Store::list_plans() {
  return db_->read_platform([&](db::Tx& tx) {
    std::vector<Plan> out;
    for (const auto& r : tx.query(std::string("SELECT ") + kPlanColumns + " FROM cdx_db.plans ORDER BY key").rows)
      out.push_back(plan_from(r));
    return out;
  });
}

std::optional<Plan> Store::find_plan(std::string_view id_or_key) {
  return db_->read_platform([&](db::Tx& tx) -> std::optional<Plan> {
    auto res = tx.query(std::string("SELECT ") + kPlanColumns + " FROM cdx_db.plans WHERE id = $1 OR key = $1",
                        {id_or_key});
    if (res.empty()) return std::nullopt;
    return plan_from(res.rows[0]);
  });
}

void Store::insert_plan(const Plan& p) {
  db_->write_platform([&](db::Tx& tx) {
    tx.query("INSERT INTO cdx_db.plans (id, key, name, rate_limit_per_minute, max_users, max_api_keys, modules, "
             "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
             {p.id, p.key, p.name, p.rate_limit_per_minute, p.max_users, p.max_api_keys,
              nlohmann::json(p.modules).dump(), p.created_at, p.updated_at});
  });
}

std::optional<Plan> Store::update_plan(const std::string& id, const PlanPatch& patch) {
  return db_->write_platform([&](db::Tx& tx) -> std::optional<Plan> {
    const std::string modules = patch.modules ? nlohmann::json(*patch.modules).dump() : std::string();
    auto res = tx.query(
        "UPDATE cdx_db.plans SET name = COALESCE($2, name), "
        "rate_limit_per_minute = COALESCE($3, rate_limit_per_minute), max_users = COALESCE($4, max_users), "
        "max_api_keys = COALESCE($5, max_api_keys), modules = COALESCE($6, modules), updated_at = $7 WHERE id = $1",
        {id, patch.name, patch.rate_limit_per_minute, patch.max_users, patch.max_api_keys,
         patch.modules ? db::Param(modules) : db::Param(nullptr), format_rfc3339(Clock::now())});
    if (res.affected == 0) return std::nullopt;
    return plan_from(
        tx.query(std::string("SELECT ") + kPlanColumns + " FROM cdx_db.plans WHERE id = $1", {id}).rows.at(0));
  });
}

int64_t Store::count_superadmins() {
  return db_->read_platform(
      [&](db::Tx& tx) { return tx.query("SELECT COUNT(*) FROM cdx_db.superadmins").rows.at(0).integer(0); });
}

void Store::insert_superadmin(const Superadmin& s) {
  db_->write_platform([&](db::Tx& tx) {
    tx.query("INSERT INTO cdx_db.superadmins (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4)",
             {s.id, s.username, s.password_hash, format_rfc3339(Clock::now())});
  });
}

std::optional<Superadmin> Store::find_superadmin_by_username(std::string_view username) {
  return db_->read_platform([&](db::Tx& tx) -> std::optional<Superadmin> {
    auto res = tx.query("SELECT id, username, password_hash FROM cdx_db.superadmins WHERE username = $1", {username});
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
    tx.query("UPDATE cdx_db.superadmins SET last_login_at = $2 WHERE id = $1", {id, format_rfc3339(Clock::now())});
  });
}

}  // namespace cdx::core
