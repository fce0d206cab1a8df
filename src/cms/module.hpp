// The CMS module: locales, content types, entries with versions and publishing, media, and the delivery
// API client apps read with a publishable key, in cms_db under /api/v1/cms/…; its domain events go to
// cms_db.outbox in the same transaction as each change.
//   auto cms = std::make_unique<cms::CmsModule>(factory.open("cms_db"), workers, config, minter);
#pragma once
#include <memory>

#include "cms/media.hpp"
#include "cms/resources.hpp"
#include "cms/service.hpp"
#include "cms/store.hpp"
#include "common/config.hpp"
#include "common/worker_pool.hpp"
#include "core/api.hpp"
#include "db/outbox.hpp"
#include "http/types.hpp"
#include "kit/idempotency.hpp"
#include "kit/kit.hpp"
#include "kit/module.hpp"

namespace cdx::cms {

class CmsModule final : public Module {
 public:
  // minter: the scheduler acts in the tenant that scheduled a publication (cms_db.schedule records it).
  // core: a tenant's plan (its upload limit).
  CmsModule(std::shared_ptr<db::Database> db, WorkerPool& workers, const Config& config, const ScopeMinter& minter,
            core::Api& core)
      : db_(std::move(db)),
        workers_(workers),
        config_(config),
        minter_(minter),
        core_(core),
        files_(config.data_dir + "/media"),
        outbox_(db_->schema()),
        service_(db_, store_, outbox_, minter, static_cast<size_t>(config.cms_cache_entries)),
        idempotency_(db_),
        kit_(db_, outbox_, workers, idempotency_),
        locales_(kit_.add(locale_resource().hooks(service_.locale_hooks()))),
        types_(kit_.add(content_type_resource().hooks(service_.type_hooks()))),
        entries_(kit_.add(entry_resource(types_).hooks(service_.entry_hooks()))),
        media_(kit_.add(media_resource().hooks(service_.media_hooks()))) {
    service_.attach(kit_, locales_, types_, entries_, media_);
  }

  std::string_view name() const override { return "cms"; }
  db::Database& database() override { return *db_; }
  std::vector<db::Migration> migrations() const override;
  void mount(http::Router& router) override;
  // Scheduled publishing: what is due is carried out within about a second. Now and then, media files no
  // row holds any more are removed.
  void tick() override;
  void purge_tenant(const db::TenantScope& scope) override {
    db_->write(scope, [&](db::Tx& tx) {
      kit_.purge_tenant(tx, scope);
      tx.query("DELETE FROM cms_db.schedule WHERE tenant_id = $1", {scope.tenant_id()});
    });
    idempotency_.purge_tenant(scope);
    files_.remove_tenant(scope.tenant_id());
    service_.cache().changed(scope.tenant_id());
  }
  std::shared_ptr<db::Database> outbox_database() override { return db_; }
  nlohmann::json aggregate_counts(const db::TenantScope& scope) override {
    return db_->read(scope, [&](db::Tx& tx) { return store_.aggregate_counts(tx, scope); });
  }
  // A small blog for `cdx serve --demo`: authors and published articles.
  void seed_demo(const db::TenantScope& scope) override;
  void add_openapi_schemas(nlohmann::json& schemas) const override;

 private:
  void mount_entries(http::Router& r);
  void mount_delivery(http::Router& r);
  void mount_media(http::Router& r);

  std::shared_ptr<db::Database> db_;
  WorkerPool& workers_;
  const Config& config_;
  const ScopeMinter& minter_;
  core::Api& core_;
  media::Files files_;
  int64_t last_sweep_ = 0;
  Store store_;
  db::Outbox outbox_;
  Service service_;
  kit::Idempotency idempotency_;
  kit::Kit kit_;
  const kit::Resource& locales_;
  const kit::Resource& types_;
  const kit::Resource& entries_;
  const kit::Resource& media_;
};

}  // namespace cdx::cms
