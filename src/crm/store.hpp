// CRM's SQL, and nowhere else: companies, contacts (and their tag index), pipelines, stages, deals, deal
// history and activities in crm_db. Every statement takes the caller's transaction and TenantScope, so the
// service composes rules, changes and outbox events in one transaction. Blocking; call from workers, or
// await a service write with write_async.
//   store.write(scope, [&](db::Tx& tx) { if (!store.company_exists(tx, scope, id)) …; store.insert_contact(tx, scope, c); });
#pragma once
#include <utility>  // before Asio's coroutine headers (GCC 12 + Boost 1.74)

#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "crm/model.hpp"
#include "db/async.hpp"
#include "db/database.hpp"

namespace cdx::crm {

class Store {
 public:
  explicit Store(std::shared_ptr<db::Database> db) : db_(std::move(db)) {}

  // A write transaction serialised per tenant (PostgreSQL advisory lock; SQLite serialises writes
  // anyway), so check-then-write rules (unique email, links that must exist, stage with deals) hold.
  // Called inside write_async's fn for the same tenant, it joins that transaction.
  template <class F>
  auto write(const db::TenantScope& scope, F&& fn) {
    if (const Joined* j = joined_; j && j->store == this && *j->tenant_id == scope.tenant_id())
      return fn(*j->tx);
    return db_->write(scope, [&](db::Tx& tx) {
      tx.lock("crm_db:" + scope.tenant_id());
      return fn(tx);
    });
  }
  // Whether a write takes the tenant's lock. A create whose only rules are unique constraints needs none:
  // the database refuses a duplicate itself (UniqueViolation, answered 409), and on PostgreSQL a tenant's
  // creates then commit side by side instead of one fsync after the other.
  enum class TenantLock { kTake, kNone };

  // A service call that writes, awaited without a thread waiting through the commit (db/async.hpp): fn()
  // runs on the database's writer thread inside one write transaction, with the tenant's lock unless told
  // otherwise, and the write() calls fn makes for this scope join it. fn must do nothing slow outside
  // write(): on SQLite every tenant's writes wait for it.
  //   Company c = co_await store.write_async(workers, scope, [&] { return service.create_company(scope, in, actor); });
  template <class F>
  Task<std::invoke_result_t<F&>> write_async(WorkerPool& workers, const db::TenantScope& scope, F fn,
                                             TenantLock lock = TenantLock::kTake) {
    co_return co_await db::write_async(*db_, workers, scope, [&](db::Tx& tx) {
      if (lock == TenantLock::kTake) tx.lock("crm_db:" + scope.tenant_id());
      const Joined join{this, &scope.tenant_id(), &tx};
      struct Restore {
        const Joined* previous;
        ~Restore() { joined_ = previous; }
      } restore{std::exchange(joined_, &join)};
      return fn();
    });
  }
  template <class F>
  auto read(const db::TenantScope& scope, F&& fn) {
    return db_->read(scope, std::forward<F>(fn));
  }

  // companies
  void insert_company(db::Tx& tx, const db::TenantScope& scope, const Company& c);
  void update_company(db::Tx& tx, const db::TenantScope& scope, const Company& c);
  std::optional<Company> find_company(db::Tx& tx, const db::TenantScope& scope, const std::string& id);
  bool company_exists(db::Tx& tx, const db::TenantScope& scope, const std::string& id);
  bool domain_taken(db::Tx& tx, const db::TenantScope& scope, const std::string& domain, const std::string& except_id);
  std::vector<Company> list_companies(db::Tx& tx, const db::TenantScope& scope, const CompanyFilter& f);
  // Deletes the company and unlinks its contacts, deals and activities; answers the unlinked contact count.
  int64_t delete_company(db::Tx& tx, const db::TenantScope& scope, const std::string& id, const std::string& now);

  // contacts
  void insert_contact(db::Tx& tx, const db::TenantScope& scope, const Contact& c);
  void update_contact(db::Tx& tx, const db::TenantScope& scope, const Contact& c);
  std::optional<Contact> find_contact(db::Tx& tx, const db::TenantScope& scope, const std::string& id);
  bool contact_exists(db::Tx& tx, const db::TenantScope& scope, const std::string& id);
  bool email_taken(db::Tx& tx, const db::TenantScope& scope, const std::string& email_normalized,
                   const std::string& except_id);
  std::vector<Contact> list_contacts(db::Tx& tx, const db::TenantScope& scope, const ContactFilter& f);
  void delete_contact(db::Tx& tx, const db::TenantScope& scope, const std::string& id, const std::string& now);

  // pipelines and stages
  void insert_pipeline(db::Tx& tx, const db::TenantScope& scope, const Pipeline& p);  // and its stages
  void update_pipeline(db::Tx& tx, const db::TenantScope& scope, const Pipeline& p);  // name, is_default, updated_at
  void clear_default_pipeline(db::Tx& tx, const db::TenantScope& scope);
  std::optional<Pipeline> find_pipeline(db::Tx& tx, const db::TenantScope& scope, const std::string& id);
  std::optional<Pipeline> default_pipeline(db::Tx& tx, const db::TenantScope& scope);  // or the oldest
  int64_t count_pipelines(db::Tx& tx, const db::TenantScope& scope);
  // Oldest first, up to limit + 1; after = the created_at|id cursor of the last seen.
  std::vector<Pipeline> list_pipelines(db::Tx& tx, const db::TenantScope& scope, const ListQuery& q);
  void delete_pipeline(db::Tx& tx, const db::TenantScope& scope, const std::string& id);  // and its stages

  void insert_stage(db::Tx& tx, const db::TenantScope& scope, const Stage& s);
  void update_stage(db::Tx& tx, const db::TenantScope& scope, const Stage& s);
  std::optional<Stage> find_stage(db::Tx& tx, const db::TenantScope& scope, const std::string& id);
  std::vector<Stage> list_stages(db::Tx& tx, const db::TenantScope& scope, const std::string& pipeline_id);
  void delete_stage(db::Tx& tx, const db::TenantScope& scope, const std::string& id);

  // deals
  void insert_deal(db::Tx& tx, const db::TenantScope& scope, const Deal& d);
  void update_deal(db::Tx& tx, const db::TenantScope& scope, const Deal& d);
  std::optional<Deal> find_deal(db::Tx& tx, const db::TenantScope& scope, const std::string& id);
  bool deal_exists(db::Tx& tx, const db::TenantScope& scope, const std::string& id);
  std::vector<Deal> list_deals(db::Tx& tx, const db::TenantScope& scope, const DealFilter& f);
  std::vector<Deal> deals_in_stage(db::Tx& tx, const db::TenantScope& scope, const std::string& stage_id);
  int64_t count_deals_in_pipeline(db::Tx& tx, const db::TenantScope& scope, const std::string& pipeline_id);
  void delete_deal(db::Tx& tx, const db::TenantScope& scope, const std::string& id, const std::string& now);

  void append_history(db::Tx& tx, const db::TenantScope& scope, DealChange& c);  // assigns seq
  // Oldest first, up to limit + 1, after the given seq.
  std::vector<DealChange> list_history(db::Tx& tx, const db::TenantScope& scope, const std::string& deal_id,
                                       int limit, int64_t after_seq);

  // activities
  void insert_activity(db::Tx& tx, const db::TenantScope& scope, const Activity& a);
  void update_activity(db::Tx& tx, const db::TenantScope& scope, const Activity& a);
  std::optional<Activity> find_activity(db::Tx& tx, const db::TenantScope& scope, const std::string& id);
  std::vector<Activity> list_activities(db::Tx& tx, const db::TenantScope& scope, const ActivityFilter& f);
  bool delete_activity(db::Tx& tx, const db::TenantScope& scope, const std::string& id);

  // CSV import: the objects the service checked (contacts with their tags) and their events, rows of
  // <outbox_schema>.outbox as db::Outbox::append writes them (one per payload), stored with multi-row
  // INSERT statements of a thousand rows each.
  struct Events {
    const std::string& outbox_schema;
    const std::string& type;
    const std::vector<std::string>& payloads;
  };
  void import_companies(db::Tx& tx, const db::TenantScope& scope, const std::vector<Company>& companies,
                        const Events& events);
  void import_contacts(db::Tx& tx, const db::TenantScope& scope, const std::vector<Contact>& contacts,
                       const Events& events);
  // Of the given values, those the tenant already has (company ids, normalized emails, domains): one
  // statement per few hundred values.
  std::unordered_set<std::string> existing_companies(db::Tx& tx, const db::TenantScope& scope,
                                                     const std::vector<std::string>& ids);
  std::unordered_set<std::string> taken_emails(db::Tx& tx, const db::TenantScope& scope,
                                               const std::vector<std::string>& emails_normalized);
  std::unordered_set<std::string> taken_domains(db::Tx& tx, const db::TenantScope& scope,
                                                const std::vector<std::string>& domains);

  Counts counts(db::Tx& tx, const db::TenantScope& scope);
  void purge_tenant(db::Tx& tx, const db::TenantScope& scope);

 private:
  // The transaction write_async opened on this thread, while its fn runs.
  struct Joined {
    const Store* store;
    const std::string* tenant_id;
    db::Tx* tx;
  };
  static inline thread_local const Joined* joined_ = nullptr;

  std::shared_ptr<db::Database> db_;
};

}  // namespace cdx::crm
