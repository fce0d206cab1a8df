// One module's declared resources over its database: the kit reads their bodies, writes their rows and
// events, lists them, mounts their routes and documents them, all from the declarations (resource.hpp).
//   kit::Kit kit(db, outbox, workers, idempotency);
//   const kit::Resource& companies = kit.add(company_resource());
//   kit.mount(router);                       // POST/GET/PATCH/DELETE /api/v1/crm/companies[/{id}]
//   auto row = kit.create(tx, caller, companies, kit::read_body(companies, body, kit::Mode::kCreate));
#pragma once
#include <nlohmann/json.hpp>

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/worker_pool.hpp"
#include "db/outbox.hpp"
#include "kit/bulk.hpp"
#include "kit/csv.hpp"
#include "kit/idempotency.hpp"
#include "kit/resource.hpp"

namespace cdx::kit {

enum class Mode { kCreate, kUpdate };

// Who acts, in which tenant; `owner` is set for CLIENTs of resources declared with an owner column.
struct Caller {
  const db::TenantScope& scope;
  Actor actor;
  std::optional<std::string> owner;
  std::optional<std::string> parent;  // nested resources: the parent row's id (resolved from the path)
  nlohmann::json params = nlohmann::json::object();  // delete: the declared parameters the request gave
  const http::Context* request = nullptr;            // the request behind the write (nullptr: code)
  nlohmann::json notes = nlohmann::json::object();   // what the prepare hook noted for the other hooks
};
Caller caller_of(const http::Context& ctx, const Resource& r);

struct ListQuery {
  int limit = 50;
  std::string sort = "created_at";  // a field name (created_at, updated_at or a sortable field)
  bool descending = true;
  std::optional<std::pair<std::string, std::string>> after;  // sort value and id of the last row seen
  std::optional<std::string> q;                              // a LIKE pattern (escaped, lower-cased)
  std::vector<std::pair<const Field*, std::string>> filters;
  std::vector<std::pair<const CustomFilter*, std::string>> custom;
  std::vector<std::pair<std::string, std::string>> equal;  // column = value, set by code (a parent's id)
};

// Builds one statement and its parameters; owns the text the parameters view.
class Sql {
 public:
  explicit Sql(std::string text = {}) : text_(std::move(text)) {}
  std::string bind(db::Param p);
  std::string bind_text(std::string v);
  Sql& operator+=(std::string_view s) {
    text_ += s;
    return *this;
  }
  const std::string& text() const { return text_; }
  const db::Params& params() const { return params_; }

 private:
  std::string text_;
  std::deque<std::string> owned_;
  db::Params params_;
};

// GET <path>: the module's outbox events in the caller's tenant, newest first; `type` filters by a name or
// by a prefix ending in '.'. For the tenant's ADMINs and the keys holding `scope`.
struct EventsRoute {
  std::string path;     // "/api/v1/crm/events"
  std::string scope;    // "crm:read"
  std::string tag;      // "crm"
  std::string schema;   // "CrmEvent" (add_event_schema)
  std::string summary;  // what the events are
};

class Kit {
 public:
  Kit(std::shared_ptr<db::Database> db, const db::Outbox& outbox, WorkerPool& workers,
      kit::Idempotency& idempotency);
  Kit(const Kit&) = delete;
  Kit& operator=(const Kit&) = delete;

  const Resource& add(Resource r);
  const Resource& get(std::string_view plural) const;

  // CRUD routes of every resource. Create takes an Idempotency-Key whose answer commits with the row.
  void mount(http::Router& router) const;
  void mount_events(http::Router& router, const EventsRoute& route) const;
  // components/schemas: <Name>, <Name>Create, <Name>Update with the limits the reader enforces.
  void add_schemas(nlohmann::json& schemas) const;
  // Deletes every row of the tenant in the resources' tables and side tables. Blocking, in tx.
  void purge_tenant(db::Tx& tx, const db::TenantScope& scope) const;

  // limit, cursor, sort, q and the declared filters from the query string (422 naming each bad one).
  ListQuery read_list(const Resource& r, const http::Context& ctx) const;
  // {"data": rows[..limit], "next_cursor"}; rows holds up to limit + 1 rows.
  std::string render_list(const Resource& r, nlohmann::json rows, const ListQuery& q) const;

  // Blocking, inside the caller's transaction. create/update/remove check, write, run the hooks and
  // append the event; 404 for another tenant's (or another owner's) row, 409 for a taken unique value.
  nlohmann::json create(db::Tx& tx, const Caller& c, const Resource& r, const nlohmann::json& patch) const;
  nlohmann::json update(db::Tx& tx, const Caller& c, const Resource& r, const std::string& id,
                        const nlohmann::json& patch) const;
  void remove(db::Tx& tx, const Caller& c, const Resource& r, const std::string& id) const;
  std::optional<nlohmann::json> find(db::Tx& tx, const Caller& c, const Resource& r,
                                     const std::string& id) const;
  nlohmann::json list(db::Tx& tx, const Caller& c, const Resource& r, const ListQuery& q) const;
  bool exists(db::Tx& tx, const db::TenantScope& scope, const std::string& table,
              const std::string& id) const;
  // Sets row[as] of every row to its children of the nested resource `child`, in the child's default
  // order: one statement for the whole page (a decorate hook's work).
  void embed(db::Tx& tx, const db::TenantScope& scope, const Resource& child, nlohmann::json& rows,
             const std::string& as) const;
  // A nested resource's parent, by id or key, into c.parent; 404 naming the parent when it does not exist.
  void resolve_parent(db::Tx& tx, Caller& c, const Resource& r, const std::string& parent_id_or_key) const;

  // CSV rows stored as new rows of r under the create rules (links and unique values checked against the
  // tenant and the file's earlier rows), with multi-row statements and their events, a batch at a time. All
  // or nothing (throws ImportFailed) unless partial. Blocking, in tx.
  ImportReport store_import(db::Tx& tx, const Caller& c, const Resource& r,
                            const std::vector<ImportRow>& rows, bool partial) const;
  // The import route's work (transfer.cpp): the body a batch at a time; in one transaction, or, on a
  // database with one writer, holding the tenant's writes and writing in short transactions around a
  // decision that commits the answer. Answers the report, or 422 with every bad row.
  Task<void> import_csv(http::Context& ctx, const Caller& c, const Resource& r, bool partial,
                        const std::string& route_key) const;
  // Imports a stop interrupted (their staged rows are left): the tenants they belong to, and finishing them
  // in one tenant: a decided import's rows are written, an undecided one's dropped. Blocking, at start.
  std::vector<std::string> interrupted_imports() const;
  void finish_imports(const db::TenantScope& scope) const;
  bool has_csv() const {
    for (const auto& r : resources_)
      if (r->csv_routes()) return true;
    return false;
  }

  // Runs fn(tx) in a write transaction; with an Idempotency-Key on the request, the answer fn leaves in
  // ctx.res commits with its change, and a retry replays it (a concurrent twin waits, then replays). With a
  // hold on the tenant's writes (db::Database::hold_writes), its writes go through it.
  Task<void> write_answer(http::Context& ctx, std::string route_key, std::function<void(db::Tx&)> fn,
                          db::WriteHold* hold = nullptr) const;

 private:
  void mount_one(http::Router& router, const Resource& r) const;
  void mount_csv(http::Router& router, const Resource& r) const;  // import and export
  // A platform resource's routes (routes.cpp): platform transactions, no Idempotency-Key, the
  // declared routes() only, read_access() on reads, after_commit once committed.
  void mount_platform(http::Router& router, const Resource& r) const;
  using Events = std::vector<std::pair<std::string, nlohmann::json>>;
  // Links and the validate hook (422), then the unique checks (409), the statement and after_write.
  void check_row(db::Tx& tx, const Caller& c, const Resource& r, nlohmann::json& row,
                 const nlohmann::json* before, const nlohmann::json& patch, nlohmann::json& event,
                 Events& more) const;
  void store_row(db::Tx& tx, const Caller& c, const Resource& r, nlohmann::json& row,
                 const nlohmann::json* before, const nlohmann::json& patch, nlohmann::json& event,
                 Events& more) const;
  // The tenant a change's events belong to: the caller's; for a platform resource, the row's event_tenant()
  // field, or none ("").
  static std::string event_tenant(const Caller& c, const Resource& r, const nlohmann::json& row);
  void append_more(db::Tx& tx, const Caller& c, const std::string& tenant, Events more) const;

  std::shared_ptr<db::Database> db_;
  const db::Outbox& outbox_;
  WorkerPool& workers_;
  kit::Idempotency& idempotency_;
  ImportStaging staging_;
  std::vector<std::unique_ptr<Resource>> resources_;
};

// Body → the fields it gives: absent fields are absent, null clears (or resets to the default), values are
// checked and normalised. 400 for bad JSON, 422 listing every bad field.
nlohmann::json read_body(const Resource& r, std::string_view body, Mode mode);
// The same rules on an already parsed object (CSV rows); errors are appended, not thrown.
nlohmann::json read_fields(const Resource& r, const nlohmann::json& doc, Mode mode,
                           std::vector<FieldError>& errors);
// One value under a field's rules (its type, limits and check), normalised; nullopt after reporting to p.
// For values whose fields are known only at run time (a CMS entry's data under its content type).
std::optional<nlohmann::json> check_value(const Field& f, const nlohmann::json& v, Problems& p);
// A query parameter as text: clean UTF-8, at most max bytes; 422 naming it otherwise. Empty is absent.
std::optional<std::string> query_text(const http::Context& ctx, std::string_view name, size_t max = 200);
// components/schemas[name]: an outbox event as mount_events renders it.
void add_event_schema(nlohmann::json& schemas, const std::string& name);
// components/schemas of one resource: <Name>, <Name>Create, <Name>Update.
void add_schema(nlohmann::json& schemas, const Resource& r);
// The query parameters a resource's list takes (q, sort, its filters), for its docs.
std::vector<std::string> list_params(const Resource& r);
// The create schema of a resource that only declares a body's fields (a hand-written route's), as `name`.
void add_body_schema(nlohmann::json& schemas, const Resource& r, const std::string& name);
// Runs the resource's prepare hook (if any) for a create or update; blocking, on a worker.
void prepare(const Resource& r, Caller& c, nlohmann::json& patch, nlohmann::json& once, bool create);
// A row's JSON as the kit renders it, from a result row in select_list() order.
nlohmann::json row_json(const Resource& r, const db::Row& row);
// Path ids that cannot be ours answer 404 without asking the database.
[[noreturn]] void not_found(const Resource& r, const std::string& id);

}  // namespace cdx::kit
