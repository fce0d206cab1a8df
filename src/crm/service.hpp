// CRM rules the kit's declarations cannot say, between the routes and the store: the default pipeline,
// stage order and deletion, a deal's pipeline, stage and history (hooks of the kit's deals),
// and the domain events written to crm_db.outbox in the same transaction as each change. Blocking.
//   kit.add(deal_resource().hooks(service.deal_hooks()));
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "crm/model.hpp"
#include "crm/store.hpp"
#include "db/outbox.hpp"
#include "kit/csv.hpp"
#include "kit/kit.hpp"

namespace cdx::crm {

class Service {
 public:
  Service(Store& store, const db::Outbox& outbox) : store_(store), outbox_(outbox) {}
  // Deals are the kit's rows: the service moves them through the kit (a deleted stage's deals).
  void attach(const kit::Kit& kit, const kit::Resource& deals, const kit::Resource& pipelines,
              const kit::Resource& stages) {
    kit_ = &kit, deals_ = &deals, pipelines_ = &pipelines, stages_ = &stages;
  }
  // The deal rules the declaration cannot say: pipeline and stage, currency, closed_at, history, events.
  kit::Hooks deal_hooks();
  // The tenant's default pipeline (made on first use, and kept: deleting it promotes the oldest), a new
  // pipeline's stages, and its stages embedded in every answer.
  kit::Hooks pipeline_hooks();
  kit::Hooks stage_hooks();

  std::vector<DealChange> deal_history(const db::TenantScope& scope, const std::string& id, int limit,
                                       int64_t after_seq);

  std::vector<db::OutboxEvent> list_events(const db::TenantScope& scope,
                                           const std::optional<std::string>& type, int limit,
                                           std::optional<int64_t> before_seq);
  Counts counts(const db::TenantScope& scope);
  void purge_tenant(const db::TenantScope& scope);

 private:
  std::string ensure_pipeline(db::Tx& tx,
                              const db::TenantScope& scope);  // the default, created when none exists
  void emit(db::Tx& tx, const db::TenantScope& scope, const std::string& type, nlohmann::json payload,
            const Actor& actor);

  void place_deal(kit::Change& c);
  void record_deal(kit::Change& c);

  Store& store_;
  const db::Outbox& outbox_;
  const kit::Kit* kit_ = nullptr;
  const kit::Resource* deals_ = nullptr;
  const kit::Resource* pipelines_ = nullptr;
  const kit::Resource* stages_ = nullptr;
};

}  // namespace cdx::crm
