// The CRM module: companies, contacts, pipelines and stages, deals and activities in crm_db, under
// /api/v1/crm/…; its domain events go to crm_db.outbox in the same transaction as each change.
//   auto crm = std::make_unique<crm::CrmModule>(factory.open("crm_db"), workers);
//   relay.add_source(crm->outbox_database());
#pragma once
#include <memory>

#include "common/worker_pool.hpp"
#include "crm/api.hpp"
#include "crm/resources.hpp"
#include "crm/service.hpp"
#include "crm/store.hpp"
#include "db/outbox.hpp"
#include "http/types.hpp"
#include "kit/idempotency.hpp"
#include "kit/kit.hpp"
#include "kit/module.hpp"

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
        idempotency_(db_),
        kit_(db_, outbox_, workers, idempotency_),
        companies_(kit_.add(company_resource())),
        contacts_(kit_.add(contact_resource())),
        activities_(kit_.add(activity_resource())),
        deals_(kit_.add(deal_resource().hooks(service_.deal_hooks()))),
        pipelines_(kit_.add(pipeline_resource().hooks(service_.pipeline_hooks()))),
        stages_(kit_.add(stage_resource(pipelines_).hooks(service_.stage_hooks()))),
        api_(service_) {
    service_.attach(kit_, deals_, pipelines_, stages_);
  }

  std::string_view name() const override { return "crm"; }
  db::Database& database() override { return *db_; }
  std::vector<db::Migration> migrations() const override;
  void mount(http::Router& router) override;
  void purge_tenant(const db::TenantScope& scope) override {
    db_->write(scope, [&](db::Tx& tx) { kit_.purge_tenant(tx, scope); });
    service_.purge_tenant(scope);
    idempotency_.purge_tenant(scope);
  }
  const kit::Kit& kit() const { return kit_; }
  nlohmann::json aggregate_counts(const db::TenantScope& scope) override {
    return db_->read(scope, [&](db::Tx& tx) { return store_.aggregate_counts(tx, scope); });
  }
  std::vector<std::string> interrupted_tenants() override { return kit_.interrupted_imports(); }
  void finish_interrupted(const db::TenantScope& scope) override { kit_.finish_imports(scope); }

  std::shared_ptr<db::Database> outbox_database() override { return db_; }
  Api& api() { return api_; }
  Service& service() { return service_; }
  // Sample companies, contacts, deals and activities for `cdx serve --demo`.
  void seed_demo(const db::TenantScope& scope) override;
  void add_openapi_schemas(nlohmann::json& schemas) const override;

 private:
  // A contact's timeline (beside the kit's routes).
  void mount_contacts(http::Router& r);
  void mount_deals(http::Router& r);
  // The activities of one contact or deal: the activity list with the parent's id fixed.
  Task<void> timeline(http::Context& ctx, const char* column, const char* parent_table, const char* noun);
  // POST routes go through the Idempotency-Key handling.
  void post(http::Router& r, const std::string& path, http::AsyncHandler handler, http::RouteDoc doc);

  std::shared_ptr<db::Database> db_;
  WorkerPool& workers_;
  Store store_;
  db::Outbox outbox_;
  Service service_;
  kit::Idempotency idempotency_;
  kit::Kit kit_;
  const kit::Resource& companies_;
  const kit::Resource& contacts_;
  const kit::Resource& activities_;
  const kit::Resource& deals_;
  const kit::Resource& pipelines_;
  const kit::Resource& stages_;
  InProcessApi api_;
};

}  // namespace cdx::crm
