#include "crm/store.hpp"

#include "kit/kit.hpp"

#include <algorithm>
#include <deque>

#include "common/clock.hpp"
#include "common/ids.hpp"
#include "common/validate.hpp"

namespace cdx::crm {

namespace {

using nlohmann::json;

// ---- deals ---------------------------------------------------------------------------------------------

constexpr const char* kHistoryColumns =
    "id, deal_id, seq, pipeline_id, from_stage_id, to_stage_id, from_status, to_status, actor_type, "
    "actor_id, "
    "changed_at";

DealChange change_from(const db::Row& r) {
  DealChange c;
  c.id = r.text(0);
  c.deal_id = r.text(1);
  c.seq = r.integer(2);
  c.pipeline_id = r.text(3);
  c.from_stage_id = r.opt_text(4);
  c.to_stage_id = r.opt_text(5);
  c.from_status = r.opt_text(6);
  c.to_status = r.opt_text(7);
  c.actor = {r.text(8), r.text(9)};
  c.changed_at = r.text(10);
  return c;
}

// ---- activities ----------------------------------------------------------------------------------------

bool exists(db::Tx& tx, const char* table, const db::TenantScope& scope, const std::string& id) {
  return !tx.query(std::string("SELECT 1 FROM crm_db.") + table + " WHERE tenant_id = $1 AND id = $2",
                   {scope.tenant_id(), id})
              .empty();
}

}  // namespace

// ---- companies -----------------------------------------------------------------------------------------

bool Store::company_exists(db::Tx& tx, const db::TenantScope& scope, const std::string& id) {
  return exists(tx, "companies", scope, id);
}

// ---- contacts ------------------------------------------------------------------------------------------

bool Store::contact_exists(db::Tx& tx, const db::TenantScope& scope, const std::string& id) {
  return exists(tx, "contacts", scope, id);
}

// ---- pipelines and stages ------------------------------------------------------------------------------

std::optional<std::string> Store::default_pipeline(db::Tx& tx, const db::TenantScope& scope) {
  auto res = tx.query(
      "SELECT id FROM crm_db.pipelines WHERE tenant_id = $1 ORDER BY is_default DESC, created_at, id "
      "LIMIT 1",
      {scope.tenant_id()});
  if (res.empty()) return std::nullopt;
  return res.rows[0].text(0);
}

void Store::clear_default_pipeline(db::Tx& tx, const db::TenantScope& scope, const std::string& except_id) {
  tx.query("UPDATE crm_db.pipelines SET is_default = 0 WHERE tenant_id = $1 AND is_default <> 0 AND id <> $2",
           {scope.tenant_id(), except_id});
}

int64_t Store::count_stages(db::Tx& tx, const db::TenantScope& scope, const std::string& pipeline_id,
                            const std::string& except_id) {
  return tx
      .query("SELECT COUNT(*) FROM crm_db.stages WHERE tenant_id = $1 AND pipeline_id = $2 AND id <> $3",
             {scope.tenant_id(), pipeline_id, except_id})
      .rows.at(0)
      .integer(0);
}

std::optional<std::string> Store::stage_named(db::Tx& tx, const db::TenantScope& scope,
                                              const std::string& pipeline_id, const std::string& name,
                                              const std::string& except_id) {
  // Compared here, not with SQL lower(): the two databases lower-case differently.
  for (const auto& row :
       tx.query("SELECT name FROM crm_db.stages WHERE tenant_id = $1 AND pipeline_id = $2 AND "
                "id <> $3",
                {scope.tenant_id(), pipeline_id, except_id})
           .rows)
    if (lowercase(row.text(0)) == lowercase(name)) return row.text(0);
  return std::nullopt;
}

std::optional<std::string> Store::stage_pipeline(db::Tx& tx, const db::TenantScope& scope,
                                                 const std::string& stage_id) {
  auto res = tx.query("SELECT pipeline_id FROM crm_db.stages WHERE tenant_id = $1 AND id = $2",
                      {scope.tenant_id(), stage_id});
  if (res.empty()) return std::nullopt;
  return res.rows[0].text(0);
}

std::optional<std::string> Store::first_stage(db::Tx& tx, const db::TenantScope& scope,
                                              const std::string& pipeline_id) {
  auto res = tx.query(
      "SELECT id FROM crm_db.stages WHERE tenant_id = $1 AND pipeline_id = $2 ORDER BY position, "
      "id LIMIT 1",
      {scope.tenant_id(), pipeline_id});
  if (res.empty()) return std::nullopt;
  return res.rows[0].text(0);
}

void Store::renumber_stages(db::Tx& tx, const db::TenantScope& scope, const std::string& pipeline_id,
                            const std::string& moved, int64_t at, const std::string& now) {
  auto res = tx.query(
      "SELECT id, position FROM crm_db.stages WHERE tenant_id = $1 AND pipeline_id = $2 AND id <> $3 "
      "ORDER BY position, created_at, id",
      {scope.tenant_id(), pipeline_id, moved});
  int64_t pos = 0;
  for (const auto& row : res.rows) {
    if (pos == at) ++pos;
    if (row.integer(1) != pos)
      tx.query("UPDATE crm_db.stages SET position = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
               {scope.tenant_id(), row.text(0), pos, now});
    ++pos;
  }
}

// ---- deals ---------------------------------------------------------------------------------------------

bool Store::deal_exists(db::Tx& tx, const db::TenantScope& scope, const std::string& id) {
  return exists(tx, "deals", scope, id);
}

int64_t Store::count_deals_in_pipeline(db::Tx& tx, const db::TenantScope& scope,
                                       const std::string& pipeline_id) {
  return tx
      .query("SELECT COUNT(*) FROM crm_db.deals WHERE tenant_id = $1 AND pipeline_id = $2",
             {scope.tenant_id(), pipeline_id})
      .rows.at(0)
      .integer(0);
}

void delete_orphan_activities(db::Tx& tx, const db::TenantScope& scope) {
  tx.query(
      "DELETE FROM crm_db.activities WHERE tenant_id = $1 AND contact_id IS NULL AND company_id IS NULL "
      "AND deal_id IS NULL",
      {scope.tenant_id()});
}

std::vector<std::string> Store::deals_in_stage(db::Tx& tx, const db::TenantScope& scope,
                                               const std::string& stage_id) {
  std::vector<std::string> out;
  for (const auto& r :
       tx.query("SELECT id FROM crm_db.deals WHERE tenant_id = $1 AND stage_id = $2 ORDER BY created_at, id",
                {scope.tenant_id(), stage_id})
           .rows)
    out.push_back(r.text(0));
  return out;
}

void Store::delete_history(db::Tx& tx, const db::TenantScope& scope, const std::string& deal_id) {
  tx.query("DELETE FROM crm_db.deal_history WHERE tenant_id = $1 AND deal_id = $2",
           {scope.tenant_id(), deal_id});
}

void Store::append_history(db::Tx& tx, const db::TenantScope& scope, DealChange& c) {
  c.seq =
      tx.query(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM crm_db.deal_history WHERE tenant_id = $1 AND deal_id = $2",
            {scope.tenant_id(), c.deal_id})
          .rows.at(0)
          .integer(0);
  tx.query(
      "INSERT INTO crm_db.deal_history (id, tenant_id, deal_id, seq, pipeline_id, from_stage_id, "
      "to_stage_id, "
      "from_status, to_status, actor_type, actor_id, changed_at) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
      {c.id, scope.tenant_id(), c.deal_id, c.seq, c.pipeline_id, c.from_stage_id, c.to_stage_id,
       c.from_status, c.to_status, c.actor.type, c.actor.id, c.changed_at});
}

std::vector<DealChange> Store::list_history(db::Tx& tx, const db::TenantScope& scope,
                                            const std::string& deal_id, int limit, int64_t after_seq) {
  std::vector<DealChange> out;
  for (const auto& r :
       tx.query(std::string("SELECT ") + kHistoryColumns +
                    " FROM crm_db.deal_history WHERE tenant_id = $1 AND deal_id = $2 AND seq > $3 "
                    "ORDER BY seq LIMIT $4",
                {scope.tenant_id(), deal_id, after_seq, static_cast<int64_t>(limit) + 1})
           .rows)
    out.push_back(change_from(r));
  return out;
}

// ---- activities ----------------------------------------------------------------------------------------

Counts Store::counts(db::Tx& tx, const db::TenantScope& scope) {
  auto one = [&](const char* sql) { return tx.query(sql, {scope.tenant_id()}).rows.at(0).integer(0); };
  Counts c;
  c.companies = one("SELECT COUNT(*) FROM crm_db.companies WHERE tenant_id = $1");
  c.contacts = one("SELECT COUNT(*) FROM crm_db.contacts WHERE tenant_id = $1");
  c.deals = one("SELECT COUNT(*) FROM crm_db.deals WHERE tenant_id = $1");
  c.open_deals = one("SELECT COUNT(*) FROM crm_db.deals WHERE tenant_id = $1 AND status = 'open'");
  c.activities = one("SELECT COUNT(*) FROM crm_db.activities WHERE tenant_id = $1");
  return c;
}

nlohmann::json Store::aggregate_counts(db::Tx& tx, const db::TenantScope& scope) {
  auto one = [&](const char* sql) { return tx.query(sql, {scope.tenant_id()}).rows.at(0).integer(0); };
  nlohmann::json deals = nlohmann::json::array();
  for (const auto& r :
       tx.query("SELECT id, status, amount, currency, closed_at FROM crm_db.deals WHERE tenant_id = $1",
                {scope.tenant_id()})
           .rows)
    deals.push_back({{"id", r.text(0)},
                     {"status", r.text(1)},
                     {"amount", r.is_null(2) ? nlohmann::json(nullptr) : nlohmann::json(r.integer(2))},
                     {"currency", r.is_null(3) ? nlohmann::json(nullptr) : nlohmann::json(r.text(3))},
                     {"closed_at", r.is_null(4) ? nlohmann::json(nullptr) : nlohmann::json(r.text(4))}});
  return {{"contacts", one("SELECT COUNT(*) FROM crm_db.contacts WHERE tenant_id = $1")},
          {"companies", one("SELECT COUNT(*) FROM crm_db.companies WHERE tenant_id = $1")},
          {"deals", std::move(deals)}};
}

void Store::purge_tenant(db::Tx& tx, const db::TenantScope& scope) {
  // Companies, contacts (with their tags) and activities are the kit's (Kit::purge_tenant).
  for (const char* table : {"deal_history", "deals", "stages", "pipelines"})
    tx.query(std::string("DELETE FROM crm_db.") + table + " WHERE tenant_id = $1", {scope.tenant_id()});
}

}  // namespace cdx::crm
