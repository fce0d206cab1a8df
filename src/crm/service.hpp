// CRM rules the kit's declarations cannot say, between the routes and the store: the default pipeline,
// stage order and deletion, a deal's pipeline, stage and history (hooks of the kit's deals), CSV imports,
// and the domain events written to crm_db.outbox in the same transaction as each change. Blocking.
//   kit.add(deal_resource().hooks(service.deal_hooks()));
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "kit/csv.hpp"
#include "kit/kit.hpp"
#include "crm/model.hpp"
#include "crm/store.hpp"
#include "db/outbox.hpp"

namespace cdx::crm {

using kit::ImportRow;
enum class ImportKind { kContacts, kCompanies };

// One CSV row that could not be imported: its 1-based line number in the file and what was wrong.
struct RowError {
  int64_t row = 0;
  std::vector<FieldError> errors;
};

struct ImportReport {
  int64_t rows = 0;     // data rows read
  int64_t created = 0;  // rows stored
  std::vector<RowError> errors;
  std::vector<std::string> ids;  // of the created objects, in row order
};
nlohmann::json to_json(const ImportReport& r);

// Thrown by an all-or-nothing import with bad rows (nothing was stored): the routes answer 422 with the
// field errors ("row 3: email") and the whole report.
struct ImportFailed : std::exception {
  explicit ImportFailed(ImportReport r) : report(std::move(r)) {}
  const char* what() const noexcept override { return "import failed"; }
  ImportReport report;
};

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

  // CSV import in one transaction: all or nothing (ImportFailed) unless partial, which stores the good rows.
  ImportReport import_contacts(const db::TenantScope& scope, const std::vector<ImportRow>& rows, bool partial,
                               const Actor& actor);
  ImportReport import_companies(const db::TenantScope& scope, const std::vector<ImportRow>& rows, bool partial,
                                const Actor& actor);

  std::vector<db::OutboxEvent> list_events(const db::TenantScope& scope, const std::optional<std::string>& type,
                                           int limit, std::optional<int64_t> before_seq);
  Counts counts(const db::TenantScope& scope);
  void purge_tenant(const db::TenantScope& scope);

 private:
  std::string ensure_pipeline(db::Tx& tx, const db::TenantScope& scope);  // the default, created when none exists
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
