// The core module: tenants, plans and superadmins in cdx_db, under /api/v1/tenants and /api/v1/plans.
//   auto core = std::make_unique<core::CoreModule>(factory.open("cdx_db"), workers, auth_api, purger);
#pragma once
#include <memory>

#include "kit/module.hpp"
#include "common/worker_pool.hpp"
#include "core/service.hpp"
#include "core/services.hpp"
#include "core/store.hpp"

namespace cdx::http {
struct Context;
}

namespace cdx::core {

class CoreModule final : public Module {
 public:
  CoreModule(std::shared_ptr<db::Database> db, WorkerPool& workers, auth::Api& auth, TenantPurger purge,
             const ScopeMinter& minter)
      : db_(std::move(db)), workers_(workers), store_(db_), service_(store_, auth, std::move(purge), minter) {}

  std::string_view name() const override { return "core"; }
  db::Database& database() override { return *db_; }
  std::vector<db::Migration> migrations() const override;
  void mount(http::Router& router) override;
  void mount_internal(http::Router& router) override;  // internal_routes.cpp
  void tick() override { services_.poll(); }
  void purge_tenant(const db::TenantScope&) override {}  // the tenant row itself goes last, in the service

  TenantService& service() { return service_; }
  // Behind a gateway (constellation), tenant and plan changes tell it to drop its cached credentials.
  void set_behind_gateway(bool v) { behind_gateway_ = v; }
  ServiceRegistry& services() { return services_; }

 private:
  // The tenant's cached credentials must be re-checked (status, plan): tells the gateway, if any.
  void tenants_changed(http::Context& ctx) const;

  std::shared_ptr<db::Database> db_;
  WorkerPool& workers_;
  Store store_;
  TenantService service_;
  ServiceRegistry services_;
  bool behind_gateway_ = false;
};

}  // namespace cdx::core
