// The core module: tenants, plans and superadmins in cdx_db, under /api/v1/tenants and /api/v1/plans.
// Tenants and plans are kit resources (resources.cpp) on platform rows; the rest is hand-written.
//   auto core = std::make_unique<core::CoreModule>(factory.open("cdx_db"), workers, auth_api, purger, minter,
//   config);
#pragma once
#include <memory>
#include <mutex>
#include <optional>

#include "common/config.hpp"
#include "common/key_encryption.hpp"
#include "common/worker_pool.hpp"
#include "core/aggregates.hpp"
#include "core/event_feed.hpp"
#include "core/event_stream.hpp"
#include "core/resources.hpp"
#include "core/service.hpp"
#include "core/services.hpp"
#include "core/store.hpp"
#include "db/outbox.hpp"
#include "kit/idempotency.hpp"
#include "kit/kit.hpp"
#include "kit/module.hpp"
#include "webhooks/webhooks.hpp"

namespace cdx::http {
struct Context;
class AnswerStream;
}  // namespace cdx::http

namespace cdx::core {

class CoreModule final : public Module {
 public:
  CoreModule(std::shared_ptr<db::Database> db, WorkerPool& workers, auth::Api& auth, TenantPurger purge,
             const ScopeMinter& minter, const Config& config)
      : db_(std::move(db)),
        workers_(workers),
        config_(config),
        stream_(stream_settings(config)),
        hub_(stream_.limits),
        store_(db_),
        feed_(db_),
        outbox_(db_->schema()),
        idempotency_(db_),
        kit_(db_, outbox_, workers, idempotency_),
        tenants_(kit_.add(announced(tenant_resource(), false))),
        plans_(kit_.add(announced(plan_resource(), true))),
        tenant_create_body_(tenant_create_body(tenants_)),
        superadmin_login_body_(superadmin_login_body()),
        service_(*db_, store_, kit_, tenants_, plans_, auth, std::move(purge), minter),
        aggregates_(db_),
        rekey_(!config.kek_previous.empty() || !config.kek_previous_file.empty()),
        webhooks_(db_, workers, minter, webhooks::Options::from(config), [this]() -> const KeyEncryption& {
          // Loaded when first needed: commands that never touch a webhook need no key.
          std::call_once(kek_once_,
                         [&] { kek_ = std::make_unique<const KeyEncryption>(KeyEncryption::load(config_)); });
          return *kek_;
        }) {
    service_.on_recorded([this] { feed_.notify(); });
    // Service status changes go to the live feed (the SUPERADMIN's streams).
    services_.on_change(
        [this](std::string_view type, const nlohmann::json& data) { hub_.publish_service(type, data); });
    webhooks_.on_disabled = [this](db::Tx& tx, const std::string& tenant, const std::string& endpoint,
                                   const std::string& reason) {
      outbox_.append(tx, tenant, "webhook.endpoint.disabled",
                     {{"endpoint", {{"id", endpoint}, {"enabled", false}, {"disabled_reason", reason}}}});
    };
  }

  std::string_view name() const override { return "core"; }
  db::Database& database() override { return *db_; }
  std::vector<db::Migration> migrations() const override;
  void mount(http::Router& router) override;
  void mount_internal(http::Router& router) override;  // internal_routes.cpp
  void mount_events(http::Router& router);             // event_routes.cpp
  void mount_overview(http::Router& router);           // overview_routes.cpp
  // What a previous key encryption key sealed is sealed again with the current one (auth does the same).
  void start() override {
    if (rekey_) webhooks_.reseal_secrets();
  }
  void start_background() override;  // the event log's subscribers and the webhook sender (subscribers.cpp)
  // The subscribers' threads use the members declared after feed_: they end before any of them goes.
  ~CoreModule() override { stop(); }
  void stop() override {
    feed_.stop();
    webhooks_.stop();
  }
  void tick() override;
  // Core's own data of a deleted tenant (its row went already, with the tenant.deleted event): its webhooks.
  void purge_tenant(const db::TenantScope& scope) override { webhooks_.purge_tenant(scope); }
  std::shared_ptr<db::Database> outbox_database() override { return db_; }
  void add_openapi_schemas(nlohmann::json& schemas) const override;

  TenantService& service() { return service_; }
  // Behind a gateway (constellation), tenant and plan changes tell it to drop its cached credentials.
  void set_behind_gateway(bool v) { behind_gateway_ = v; }
  ServiceRegistry& services() { return services_; }
  // The live feed (GET /api/v1/events/stream): the EventFeed's live subscriber publishes into it.
  EventStreamHub& event_hub() { return hub_; }
  EventFeed& feed() { return feed_; }
  // The tenant overview's counters: the event-log subscriber, the read, the rebuild.
  Aggregates& aggregates() { return aggregates_; }
  webhooks::Webhooks& webhooks() { return webhooks_; }

 private:
  // The tenant's cached credentials must be re-checked (status, plan): tells the gateway, if any.
  void tenants_changed(http::Context& ctx) const;
  // r with an after_commit hook telling auth and the gateway about a change (a plan's: every tenant's).
  kit::Resource announced(kit::Resource r, bool every_tenant);
  // One client's live feed, after its access was checked (event_routes.cpp).
  Task<void> stream_events(http::AnswerStream& out, EventFilter filter, bool superadmin,
                           std::optional<int64_t> after);

  std::shared_ptr<db::Database> db_;
  WorkerPool& workers_;
  const Config& config_;
  // Before the feed: its live thread publishes into the hub until it stops.
  StreamSettings stream_;
  EventStreamHub hub_;
  Store store_;
  EventFeed feed_;
  uint64_t ticks_ = 0;
  // The kit's collaborators. Tenants and plans are platform resources: their events go to cdx_db.outbox;
  // no Idempotency-Key store, so that has no table.
  db::Outbox outbox_;
  kit::Idempotency idempotency_;
  kit::Kit kit_;
  const kit::Resource& tenants_;
  const kit::Resource& plans_;
  const kit::Resource tenant_create_body_;
  const kit::Resource superadmin_login_body_;
  TenantService service_;
  ServiceRegistry services_;
  Aggregates aggregates_;
  bool behind_gateway_ = false;
  std::once_flag kek_once_;
  std::unique_ptr<const KeyEncryption> kek_;  // seals the webhook endpoints' secrets
  bool rekey_ = false;                        // a previous key is configured: re-seal at start
  webhooks::Webhooks webhooks_;               // last: its threads stop before the rest goes
};

}  // namespace cdx::core
