// The core module: tenants, plans and superadmins in cdx_db, under /api/v1/tenants and /api/v1/plans.
//   auto core = std::make_unique<core::CoreModule>(factory.open("cdx_db"), workers, auth_api, purger);
#pragma once
#include <memory>

#include "common/module.hpp"
#include "common/worker_pool.hpp"
#include "core/service.hpp"
#include "core/services.hpp"
#include "core/store.hpp"

namespace cdx::core {

class CoreModule final : public Module {
 public:
  CoreModule(std::shared_ptr<db::Database> db, WorkerPool& workers, auth::Api& auth, TenantPurger purge)
      : db_(std::move(db)), workers_(workers), store_(db_), service_(store_, auth, std::move(purge)) {}

  std::string_view name() const override { return "core"; }
  db::Database& database() override { return *db_; }
  std::vector<db::Migration> migrations() const override;
  void mount(http::Router& router) override;
  void mount_internal(http::Router& router) override;  // internal_routes.cpp
  void tick() override { services_.poll(); }
  void purge_tenant(const db::TenantScope&) override {}  // the tenant row itself goes last, in the service

  TenantService& service() { return service_; }
  ServiceRegistry& services() { return services_; }

 private:
  std::shared_ptr<db::Database> db_;
  WorkerPool& workers_;
  Store store_;
  TenantService service_;
  ServiceRegistry services_;
};

}  // namespace cdx::core
