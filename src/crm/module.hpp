// The CRM module: companies, contacts, pipelines and stages, deals and activities in crm_db, under
// /api/v1/crm/…; its domain events go to crm_db.outbox in the same transaction as each change.
//   auto crm = std::make_unique<crm::CrmModule>(factory.open("crm_db"), workers);
//   relay.add_source(crm->outbox_database());
#pragma once
#include <memory>

#include "common/module.hpp"
#include "common/worker_pool.hpp"
#include "crm/api.hpp"
#include "crm/csv.hpp"
#include "crm/service.hpp"
#include "crm/store.hpp"
#include "db/outbox.hpp"
#include "http/idempotency.hpp"
#include "http/types.hpp"

namespace cdx::crm {

// crm::Api for modules in the same process.
class InProcessApi final : public Api {
 public:
  explicit InProcessApi(Service& service) : service_(service) {}
  Counts counts(const db::TenantScope& scope) override { return service_.counts(scope); }

 private:
  Service& service_;
};

class CrmModule final : public Module {
 public:
  CrmModule(std::shared_ptr<db::Database> db, WorkerPool& workers)
      : db_(std::move(db)),
        workers_(workers),
        store_(db_),
        outbox_(db_->schema()),
        service_(store_, outbox_),
        idempotency_(db_, workers),
        api_(service_) {}

  std::string_view name() const override { return "crm"; }
  db::Database& database() override { return *db_; }
  std::vector<db::Migration> migrations() const override;
  void mount(http::Router& router) override;
  void purge_tenant(const db::TenantScope& scope) override {
    service_.purge_tenant(scope);
    idempotency_.purge_tenant(scope);
  }

  // The database whose outbox the platform's relay drains.
  std::shared_ptr<db::Database> outbox_database() const { return db_; }
  Api& api() { return api_; }
  Service& service() { return service_; }
  // Sample companies, contacts, deals and activities for `cdx serve --demo`.
  void seed_demo(const db::TenantScope& scope);

 private:
  void mount_companies(http::Router& r);
  // CSV import of companies or contacts: the report, or 422 with the row errors.
  Task<void> import_csv(http::Context& ctx, ImportKind kind);
  void mount_contacts(http::Router& r);
  void mount_pipelines(http::Router& r);
  void mount_deals(http::Router& r);
  void mount_activities(http::Router& r);
  void mount_events(http::Router& r);
  // A service call that writes, awaited without a worker waiting through the commit (Store::write_async).
  template <class F>
  Task<std::invoke_result_t<F&>> write(const db::TenantScope& scope, F fn,
                                       Store::TenantLock lock = Store::TenantLock::kTake) {
    return store_.write_async(workers_, scope, std::move(fn), lock);
  }
  // POST routes go through the Idempotency-Key handling.
  void post(http::Router& r, const std::string& path, http::AsyncHandler handler, http::RouteDoc doc);

  std::shared_ptr<db::Database> db_;
  WorkerPool& workers_;
  Store store_;
  db::Outbox outbox_;
  Service service_;
  http::Idempotency idempotency_;
  InProcessApi api_;
};

}  // namespace cdx::crm
