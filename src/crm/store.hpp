// CRM's SQL the kit does not derive: pipelines and stages, deal history, counts and purge in
// crm_db. Every statement takes the caller's transaction and TenantScope, so the service composes rules,
// changes and outbox events in one transaction. Blocking; call from workers.
//   store.read(scope, [&](db::Tx& tx) { return store.list_history(tx, scope, id, 50, 0); });
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "crm/model.hpp"
#include "db/database.hpp"

namespace cdx::crm {

// Activities that lost their last link go with it: an activity is always about something.
void delete_orphan_activities(db::Tx& tx, const db::TenantScope& scope);

class Store {
 public:
  explicit Store(std::shared_ptr<db::Database> db) : db_(std::move(db)) {}

  // A write transaction serialised per tenant (PostgreSQL advisory lock; SQLite serialises writes
  // anyway), so check-then-write rules (unique email, links that must exist, stage with deals) hold.
  template <class F>
  auto write(const db::TenantScope& scope, F&& fn) {
    return db_->write(scope, [&](db::Tx& tx) {
      tx.lock("crm_db:" + scope.tenant_id());
      return fn(tx);
    });
  }
  template <class F>
  auto read(const db::TenantScope& scope, F&& fn) {
    return db_->read(scope, std::forward<F>(fn));
  }

  // companies
  bool company_exists(db::Tx& tx, const db::TenantScope& scope, const std::string& id);
  // Deletes the company and unlinks its contacts, deals and activities; answers the unlinked contact count.

  // contacts
  bool contact_exists(db::Tx& tx, const db::TenantScope& scope, const std::string& id);

  // pipelines and stages
  std::optional<std::string> default_pipeline(db::Tx& tx, const db::TenantScope& scope);  // or the oldest
  void clear_default_pipeline(db::Tx& tx, const db::TenantScope& scope, const std::string& except_id);
  int64_t count_stages(db::Tx& tx, const db::TenantScope& scope, const std::string& pipeline_id,
                       const std::string& except_id);
  // The name of another stage of the pipeline called `name` (ignoring case).
  std::optional<std::string> stage_named(db::Tx& tx, const db::TenantScope& scope,
                                         const std::string& pipeline_id, const std::string& name,
                                         const std::string& except_id);
  std::optional<std::string> stage_pipeline(db::Tx& tx, const db::TenantScope& scope,
                                            const std::string& stage_id);
  std::optional<std::string> first_stage(db::Tx& tx, const db::TenantScope& scope,
                                         const std::string& pipeline_id);
  // Positions 0..n-1 in order, leaving position `at` to the stage `moved` (already written there).
  void renumber_stages(db::Tx& tx, const db::TenantScope& scope, const std::string& pipeline_id,
                       const std::string& moved, int64_t at, const std::string& now);

  // deals
  bool deal_exists(db::Tx& tx, const db::TenantScope& scope, const std::string& id);
  std::vector<std::string> deals_in_stage(db::Tx& tx, const db::TenantScope& scope,
                                          const std::string& stage_id);
  void delete_history(db::Tx& tx, const db::TenantScope& scope, const std::string& deal_id);
  int64_t count_deals_in_pipeline(db::Tx& tx, const db::TenantScope& scope, const std::string& pipeline_id);

  void append_history(db::Tx& tx, const db::TenantScope& scope, DealChange& c);  // assigns seq
  // Oldest first, up to limit + 1, after the given seq.
  std::vector<DealChange> list_history(db::Tx& tx, const db::TenantScope& scope, const std::string& deal_id,
                                       int limit, int64_t after_seq);

  // activities

  Counts counts(db::Tx& tx, const db::TenantScope& scope);
  // The tenant overview's recount (Module::aggregate_counts): contacts, companies, and every deal's state.
  nlohmann::json aggregate_counts(db::Tx& tx, const db::TenantScope& scope);
  void purge_tenant(db::Tx& tx, const db::TenantScope& scope);

 private:
  std::shared_ptr<db::Database> db_;
};

}  // namespace cdx::crm
