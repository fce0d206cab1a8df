// A resource declared once — its fields with their types and rules, its access, its hooks — from which the
// kit derives the body reader, the SQL, lists, routes, OpenAPI schemas, events and the tenant purge.
//   Resource r("crm", "company", "companies");
//   r.field(text("name", 200).required().searchable().sortable())
//    .field(text("domain", 253).min(3).check(domain_rule).unique("domain_normalized").filter());
//   kit.add(std::move(r));   // POST/GET/PATCH/DELETE /api/v1/crm/companies[/{id}]
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "db/database.hpp"
#include "http/router.hpp"

namespace cdx::kit {

enum class Type : uint8_t {
  kText,        // a string: trimmed, clean UTF-8, min/max characters, optional pattern and check
  kInteger,     // a JSON integer in [minimum, maximum]
  kBoolean,     // true / false (stored 0 / 1)
  kId,          // a lower-case UUID; refs() makes it a link that must exist in the tenant
  kEnum,        // one of values
  kDate,        // YYYY-MM-DD, a real day
  kDateTime,    // RFC 3339, stored as given (normalised to UTC by the check)
  kObject,      // a JSON object: at most max bytes as JSON, or the declared properties only
  kTextList,    // an array of distinct strings (at most max items of at most item_max characters)
  kObjectList,  // an array of objects whose members are the declared properties (at most max items)
  kNumber,      // a JSON number in [number_min, number_max] (stored as its JSON text)
  kJson,        // any JSON value of at most max bytes as JSON (stored as JSON text)
};

// What a field's check() may report: a problem with the value, or with one of its members ("address.city").
class Problems {
 public:
  Problems(std::string field, std::vector<FieldError>& errors) : field_(std::move(field)), errors_(errors) {}
  void fail(std::string message) { errors_.push_back({field_, std::move(message)}); }
  void fail_in(std::string_view member, std::string message) {
    errors_.push_back({field_ + "." + std::string(member), std::move(message)});
  }
  void add(FieldError e) { errors_.push_back(std::move(e)); }  // an error already named in full
  size_t count() const { return errors_.size(); }

 private:
  std::string field_;
  std::vector<FieldError>& errors_;
};

// Normalises a value in place (lower-cases a domain) or reports why it is not acceptable.
using Check = std::function<void(nlohmann::json& value, Problems& problems)>;

enum class Match : uint8_t { kNone, kExact, kCaseless };

struct Field {
  std::string name;
  Type type = Type::kText;
  std::string column_name;   // defaults to name
  bool is_required = false;  // given on create, never null
  bool is_nullable = true;   // null clears the value (PATCH)
  bool is_multiline = false;
  bool is_read_only = false;    // set by hooks only; a body naming it gets 422 "is read-only"
  bool is_create_only = false;  // given on create only; PATCH naming it gets 422
  bool is_column = true;        // false: no column; hooks store it (after_write) and render it (decorate)
  bool is_write_only = false;   // in bodies only (taken verbatim): never stored, rendered or in events
  bool is_hidden = false;       // a column hooks write (a hash): never read back, rendered or accepted
  size_t min_len = 0;           // text: characters; list: items
  size_t max_len = 0;           // text: characters; list: items; object without properties: bytes as JSON
  size_t item_max = 0;          // list: characters per item
  std::optional<int64_t> minimum, maximum;
  std::optional<double> number_min, number_max;  // number
  std::vector<std::string> values;               // enum
  std::vector<Field> properties;                 // object: the only members it may have (each optional text);
                                  // object list: each item's members, with their own types and rules
  std::string read_schema;     // object list: the schema its rendered items have ("Stage")
  std::string pattern;         // the pattern check() enforces, for OpenAPI
  std::string openapi_format;  // "email", "hostname", "uuid", "date", "date-time"
  std::string description;
  std::string unique_on;   // non-empty: unique per tenant, compared on this column (409)
  std::string refs_table;  // kId: the id must name a row of this table in the same tenant
  Match filter_match = Match::kNone;
  bool is_searchable = false;
  bool is_sortable = false;
  nlohmann::json default_value;  // on create when absent (null: none)
  Check checker;
  bool is_immutable = false;     // given on create, never changed: a PATCH naming it gets 422
  std::string read_only_reason;  // read-only: said in the 422 ("use /suspend or /resume")
  bool is_verbatim = false;      // text kept as given (not trimmed): passwords
  bool merges = false;           // object: a PATCH value is merged into the stored one (RFC 7396)

  const std::string& column() const { return column_name.empty() ? name : column_name; }

  Field& required() {
    is_required = true, is_nullable = false;
    return *this;
  }
  Field& not_null() {
    is_nullable = false;
    return *this;
  }
  Field& min(size_t n) {
    min_len = n;
    return *this;
  }
  Field& multiline() {
    is_multiline = true;
    return *this;
  }
  Field& read_only() {
    is_read_only = true;
    return *this;
  }
  Field& create_only() {
    is_create_only = true;
    return *this;
  }
  // The kit neither stores nor reads it: a hook stores what the body gave, decorate renders it.
  Field& no_column() {
    is_column = false;
    return *this;
  }
  Field& renders_as(std::string schema) {
    read_schema = std::move(schema);
    return *this;
  }
  Field& read_only(std::string reason) {
    is_read_only = true;
    read_only_reason = std::move(reason);
    return *this;
  }
  Field& immutable() {
    is_immutable = true;
    return *this;
  }
  Field& verbatim() {
    is_verbatim = true;
    return *this;
  }
  Field& merge_patch() {
    merges = true;
    return *this;
  }
  // A body value the hooks consume (a password, hashed into a hidden field): checked like any field but not
  // trimmed, and never stored, rendered or put in an event. Hooks read it from Change::patch /
  // Prepare::patch.
  Field& write_only() {
    is_write_only = true;
    return *this;
  }
  // A column only hooks write (a password or key hash): not accepted in bodies (an unknown field), never read
  // back, rendered or put in an event. Written when a hook or the prepare step gives it a value.
  Field& hidden() {
    is_hidden = true;
    return *this;
  }
  bool rendered() const { return !is_write_only && !is_hidden; }
  Field& column(std::string c) {
    column_name = std::move(c);
    return *this;
  }
  Field& unique(std::string on_column = "") {
    unique_on = on_column.empty() ? column() : std::move(on_column);
    return *this;
  }
  Field& refs(std::string table) {
    refs_table = std::move(table);
    return *this;
  }
  Field& filter(Match m = Match::kExact) {
    filter_match = m;
    return *this;
  }
  Field& searchable() {
    is_searchable = true;
    return *this;
  }
  Field& sortable() {
    is_sortable = true;
    return *this;
  }
  Field& defaults(nlohmann::json v) {
    default_value = std::move(v);
    return *this;
  }
  Field& check(Check c, std::string documented_pattern = "") {
    checker = std::move(c);
    pattern = std::move(documented_pattern);
    return *this;
  }
  Field& format(std::string f) {
    openapi_format = std::move(f);
    return *this;
  }
  Field& doc(std::string d) {
    description = std::move(d);
    return *this;
  }
};

Field text(std::string name, size_t max_length);
Field integer(std::string name, int64_t minimum, int64_t maximum);
Field boolean(std::string name);
Field id(std::string name);
Field choice(std::string name, std::vector<std::string> values);
Field date(std::string name);
Field datetime(std::string name);
Field object(std::string name, size_t max_bytes);
Field object(std::string name, std::vector<Field> properties);
Field text_list(std::string name, size_t max_items, size_t item_max);
// A JSON number (integer or fraction), optionally bounded.
Field number(std::string name, std::optional<double> minimum = {}, std::optional<double> maximum = {});
// Any JSON value (object, array, string, number, boolean) of at most max_bytes as JSON.
Field any_json(std::string name, size_t max_bytes);
// Errors name the item and member: "stages[0].probability".
Field object_list(std::string name, std::vector<Field> properties, size_t max_items);

// Who made a change (recorded in events and history).
struct Actor {
  std::string type;  // "user" | "api_key" | "superadmin"
  std::string id;
  nlohmann::json to_json() const { return {{"type", type}, {"id", id}}; }
};
Actor actor_of(const http::Context& ctx);

struct Caller;  // kit.hpp: who acts, in which tenant, for which request

// A write the kit is about to make, handed to hooks inside its transaction.
struct Change {
  db::Tx& tx;
  const db::TenantScope& scope;
  nlohmann::json& row;           // the whole new row (create, update); hooks may set read-only fields
  const nlohmann::json* before;  // the stored row (update, delete); nullptr on create
  const nlohmann::json& patch;   // what the body gave: absent / null / value
  std::vector<FieldError>& errors;
  nlohmann::json& event;  // the event payload; hooks may add to it
  const Actor& actor;
  std::vector<std::pair<std::string, nlohmann::json>>& more;  // events after the kit's own (with the actor)
  bool given(std::string_view f) const { return patch.contains(f); }
  const nlohmann::json* params = nullptr;  // delete: the declared query parameters the request gave
  // Another event of this change, written after the kit's own ("crm.deal.won"); the actor is added.
  void emit(std::string type, nlohmann::json payload) {
    more.emplace_back(std::move(type), std::move(payload));
  }
  // The field's value in the new row, or nullptr when it is null or absent.
  const nlohmann::json* value(std::string_view f) const;
  // A declared delete parameter (Resource::delete_param), when the request gave it.
  std::optional<std::string> param(std::string_view name) const;
  // Who acts: its request (nullptr for writes made by code, such as seeding) and what the prepare step noted.
  const Caller* caller = nullptr;
};

// Work before the write transaction, on a worker: slow work (hashing a password) must not hold the write
// lock, nor may calls to other services (a plan's quota). Throw cdx::Error to refuse.
struct Prepare {
  Caller& caller;         // caller.notes: facts for the hooks inside the transaction
  nlohmann::json& patch;  // what the body gave; may add values of read-only and hidden fields
  nlohmann::json&
      once;  // create: members of this answer only (a secret shown once): never stored, never in
             // an event, never in an Idempotency-Key replay; the answer gets Cache-Control: no-store
  bool create;
};

// A filter the declaration of a field cannot say (tags held in a side table): appends " AND …" to sql,
// binding with bind(value) → "$n".
struct CustomFilter {
  std::string name;
  size_t max_length = 200;
  std::function<std::string(const std::string& value, const std::function<std::string(std::string)>& bind)>
      where;
};

// The kit's routes of a resource.
enum class Op : uint8_t { kCreate = 1, kList = 2, kGet = 4, kUpdate = 8, kDelete = 16 };

struct Hooks {
  // Rules across fields or rows, inside the write transaction, before the row is written: append to
  // change.errors (422 with every error) or throw cdx::Error.
  std::function<void(Change&)> validate;
  // Side tables and history, after the row is written, in the same transaction.
  std::function<void(Change&)> after_write;
  // Before the row is deleted (count or unlink children, refuse with 409), in the same transaction; links
  // from the module's other kit resources are cleared after it.
  std::function<void(Change&)> before_delete;
  // After the row and its links are gone (tidy what the unlinking left), in the same transaction.
  std::function<void(Change&)> after_delete;
  // Adds what is kept elsewhere (a pipeline's stages) to rows about to be answered: one call per page,
  // `rows` a JSON array, so the hook reads every row's extras in one statement.
  std::function<void(db::Tx&, const db::TenantScope&, nlohmann::json& rows)> decorate;
  // A CSV import's rows, after they are inserted (side tables for a whole batch), in the same transaction.
  std::function<void(db::Tx&, const db::TenantScope&, const std::vector<const nlohmann::json*>& rows)>
      after_import;
  // The rows a tenant starts with (a default pipeline): written, in a write transaction, the first time
  // its unfiltered list is read empty.
  std::function<void(db::Tx&, const db::TenantScope&)> seed;
  // After a kit route's change committed, outside the transaction, on a worker: what must not hold a
  // transaction open (calls to other services, cache invalidation, a response header). row: as written, or
  // as it was (delete). Platform resources only, for now.
  std::function<void(http::Context&, Op, const nlohmann::json& row)> after_commit;
  // Before the write transaction of a create or update route, on a worker (see Prepare).
  std::function<void(Prepare&)> prepare;
  // In the route, after a create, update or delete committed: drop caches (a revoked key stops at once).
  std::function<void(http::Context&)> committed;
};

// Extra columns kept from the row on every write (normalised copies for unique checks, a search column).
struct Derived {
  std::string column;
  std::function<db::Param(const nlohmann::json& row, std::string& storage)> value;
};

class Resource {
 public:
  // module: "crm" (schema crm_db, paths /api/v1/crm/…, events crm.<kind>.*); kind: "company"; plural:
  // "companies" (table and path segment).
  Resource(std::string module, std::string kind, std::string plural);

  // Item routes take this field's value as well as the id (`/content-types/{id or key}`). The field must be
  // a required text field, unique per tenant (or per parent).
  Resource& key(std::string field) {
    key_field_ = std::move(field);
    return *this;
  }
  // Rows that belong to a row of `parent` (a kit resource added before this one): served under the
  // parent's item path (/api/v1/crm/pipelines/{pipeline}/stages), the parent's id kept in `column` and
  // rendered under that name; a parent that does not exist is 404; deleting the parent deletes them.
  Resource& parent(const Resource& parent, std::string column) {
    parent_ = &parent;
    parent_column_ = std::move(column);
    return *this;
  }
  // The name its item routes give the row's path parameter (`/{id}`, `/stages/{stage_id}`): documentation
  // only, matching is by position.
  Resource& item_param(std::string name) {
    item_param_ = std::move(name);
    return *this;
  }
  const std::string& item_param() const { return item_param_; }
  // A platform table (tenants, plans in cdx_db): no tenant_id column; rows are read and written in the
  // database's platform transactions, with no tenant predicate. Writes must be SUPERADMIN's (access());
  // reads may be wider (read_access()). Its events carry the tenant named by event_tenant(), or none (a
  // platform-wide event, tenant ""); it takes no Idempotency-Key (the key store is per tenant).
  Resource& platform() {
    platform_ = true;
    return *this;
  }
  // Where the rows live when not in <module>_db (core's are in cdx_db), and the collection's path when not
  // /api/v1/<module>/<plural> (core's: /api/v1/tenants).
  Resource& schema(std::string s) {
    schema_ = std::move(s);
    return *this;
  }
  Resource& path(std::string p) {
    path_ = std::move(p);
    return *this;
  }
  // Events named <prefix>.<what> ("tenant.created") instead of <module>.<kind>.<what>.
  Resource& event_prefix(std::string prefix) {
    event_prefix_ = std::move(prefix);
    return *this;
  }
  // A platform resource's events belong to the tenant this field of the row names (a tenant's own row: "id").
  Resource& event_tenant(std::string field) {
    event_tenant_ = std::move(field);
    return *this;
  }
  const std::string& event_tenant() const { return event_tenant_; }
  // The kit appends no <module>.<kind>.* events for this resource.
  Resource& no_events() {
    events_ = false;
    return *this;
  }
  // Who may list and get rows, when wider than access() (which then says who may write).
  Resource& read_access(http::Access a) {
    read_access_ = a;
    return *this;
  }
  // The only routes the kit mounts (the others are hand-written or absent: a revoke-only key has no PATCH).
  Resource& routes(std::initializer_list<Op> ops) {
    ops_ = 0;
    for (Op op : ops) ops_ |= static_cast<uint8_t>(op);
    return *this;
  }
  // A list's order when the request names none: "-created_at" (the default), "key", "-name", …
  Resource& default_sort(std::string sort) {
    default_sort_ = std::move(sort);
    return *this;
  }
  // The path segment when it differs from the plural (table auth_db.api_keys, path /api/v1/auth/api-keys).
  Resource& segment(std::string s) {
    segment_ = std::move(s);
    return *this;
  }
  // Access of GET and PATCH on one item when it differs (kTenantAdminOrSelf: a user reads and changes
  // itself).
  Resource& item_access(http::Access a) {
    item_access_ = a;
    return *this;
  }
  // Rows render their tenant_id (after id).
  Resource& show_tenant_id() {
    show_tenant_id_ = true;
    return *this;
  }
  // DELETE sets this read-only datetime field to the time instead of removing the row (a revoked key): the
  // row then answers 404 and is not listed, but is kept for the record until its tenant is purged.
  Resource& soft_delete(std::string field) {
    soft_delete_ = std::move(field);
    return *this;
  }
  // A value the create answer holds once (a secret), documented in <Name>Created; the prepare hook makes it.
  Resource& reveals(Field f) {
    revealed_.push_back(std::move(f));
    return *this;
  }
  // The body reader skips members it does not know instead of refusing them (the bodies of sign-in and token
  // routes, which clients and libraries send extra members to). Read-only fields are still refused.
  Resource& ignore_unknown() {
    ignore_unknown_ = true;
    return *this;
  }
  bool ignores_unknown() const { return ignore_unknown_; }
  Resource& field(Field f) {
    fields_.push_back(std::move(f));
    return *this;
  }
  Resource& access(http::Access a) {
    access_ = a;
    return *this;
  }
  // Scopes an API key needs: default "<module>:read" and "<module>:write".
  Resource& scopes(std::string read, std::string write) {
    read_scope_ = std::move(read), write_scope_ = std::move(write);
    return *this;
  }
  // CLIENT principals see and change only rows whose `column` holds their own id (set on create).
  Resource& owner(std::string column) {
    owner_column_ = std::move(column);
    return *this;
  }
  Resource& derived(std::string column, std::function<db::Param(const nlohmann::json&, std::string&)> value) {
    derived_.push_back({std::move(column), std::move(value)});
    return *this;
  }
  // ?q= matches this column (kept by a derived() value, lower-cased) instead of OR over searchable fields.
  Resource& search_column(std::string column) {
    search_column_ = std::move(column);
    return *this;
  }
  Resource& custom_filter(CustomFilter f) {
    custom_filters_.push_back(std::move(f));
    return *this;
  }
  // A row must hold at least one of these fields (non-null); 422 on the first one with `message`
  // otherwise. Documented as anyOf in the create schema.
  Resource& at_least_one(std::vector<std::string> fields, std::string message) {
    at_least_one_.push_back({std::move(fields), std::move(message)});
    return *this;
  }
  Resource& hooks(Hooks h) {
    hooks_ = std::move(h);
    return *this;
  }
  // Tables holding rows that belong to this resource's rows (purged with the tenant).
  Resource& side_table(std::string table) {
    side_tables_.push_back(std::move(table));
    return *this;
  }
  // Documentation: the schema name ("Company"; Create/Update schemas derive from it) and a summary per
  // operation's noun ("company").
  Resource& schema_name(std::string n) {
    schema_name_ = std::move(n);
    return *this;
  }
  Resource& describe_delete(std::string s) {
    delete_summary_ = std::move(s);
    return *this;
  }
  Resource& describe_list(std::string s) {
    list_summary_ = std::move(s);
    return *this;
  }
  Resource& describe_create(std::string s) {
    create_summary_ = std::move(s);
    return *this;
  }
  // POST …/import (CSV rows under the create rules, stored in bulk) and GET …/export (the list as CSV).
  // Needs no validate or after_write hook, or an after_import hook doing their work for a whole batch.
  Resource& csv() {
    csv_ = true;
    return *this;
  }
  // A query parameter DELETE takes (?move_deals_to=), handed to the delete hooks as Change::param.
  Resource& delete_param(std::string name) {
    delete_params_.push_back(std::move(name));
    return *this;
  }

  const std::string& module() const { return module_; }
  const std::string& kind() const { return kind_; }
  const std::string& plural() const { return plural_; }
  std::string schema() const { return schema_.empty() ? module_ + "_db" : schema_; }
  std::string table() const { return schema() + "." + plural_; }
  std::string path() const {
    if (!path_.empty()) return path_;
    const std::string& seg = segment_.empty() ? plural_ : segment_;
    return parent_ ? parent_->path() + "/{" + parent_->item_param() + "}/" + seg
                   : "/api/v1/" + module_ + "/" + seg;
  }
  http::Access item_access() const { return item_access_.value_or(access_); }
  bool shows_tenant_id() const { return show_tenant_id_; }
  const std::string& soft_delete_field() const { return soft_delete_; }
  const std::vector<Field>& revealed() const { return revealed_; }
  const std::string& key_field() const { return key_field_; }
  bool is_platform() const { return platform_; }
  bool has_events() const { return events_; }
  http::Access read_access() const { return read_access_.value_or(access_); }
  bool mounts(Op op) const { return (ops_ & static_cast<uint8_t>(op)) != 0; }
  const std::string& default_sort() const { return default_sort_; }
  const Resource* parent_resource() const { return parent_; }
  const std::string& parent_column() const { return parent_column_; }
  std::string event(std::string_view what) const {
    return (event_prefix_.empty() ? module_ + "." + kind_ : event_prefix_) + "." + std::string(what);
  }
  const std::vector<Field>& fields() const { return fields_; }
  const Field* find(std::string_view name) const;
  http::Access access() const { return access_; }
  const std::string& read_scope() const { return read_scope_; }
  const std::string& write_scope() const { return write_scope_; }
  const std::string& owner_column() const { return owner_column_; }
  const std::vector<Derived>& derived() const { return derived_; }
  const std::string& search_column() const { return search_column_; }
  const std::vector<CustomFilter>& custom_filters() const { return custom_filters_; }
  const Hooks& hooks() const { return hooks_; }
  struct AtLeastOne {
    std::vector<std::string> fields;
    std::string message;
  };
  const std::vector<AtLeastOne>& at_least_one() const { return at_least_one_; }
  const std::vector<std::string>& side_tables() const { return side_tables_; }
  const std::string& schema_name() const { return schema_name_; }
  const std::string& delete_summary() const { return delete_summary_; }
  const std::string& list_summary() const { return list_summary_; }
  const std::string& create_summary() const { return create_summary_; }
  bool csv_routes() const { return csv_; }
  const std::vector<std::string>& delete_params() const { return delete_params_; }

  // Sortable columns: created_at, updated_at and the fields marked sort().
  bool sortable(std::string_view name) const;
  // The SELECT list: id, [tenant_id], every rendered field's column, [parent], created_at, updated_at.
  const std::string& select_list() const { return select_list_; }
  // Checks the declaration once (sortable fields are not nullable, names are SQL-safe); throws logic_error.
  void seal();

 private:
  std::string module_, kind_, plural_;
  std::string segment_;
  std::optional<http::Access> item_access_;
  bool show_tenant_id_ = false;
  bool ignore_unknown_ = false;
  std::string soft_delete_;
  std::vector<Field> revealed_;
  std::string key_field_;
  std::string item_param_ = "id";
  const Resource* parent_ = nullptr;
  std::string parent_column_;
  std::vector<Field> fields_;
  http::Access access_ = http::Access::kTenantAdmin;
  std::string read_scope_, write_scope_;
  std::string owner_column_;
  std::vector<Derived> derived_;
  std::string search_column_;
  std::vector<CustomFilter> custom_filters_;
  Hooks hooks_;
  std::vector<AtLeastOne> at_least_one_;
  std::vector<std::string> side_tables_;
  std::string schema_name_, delete_summary_, list_summary_, create_summary_;
  bool csv_ = false;
  std::vector<std::string> delete_params_;
  std::string select_list_;
  bool platform_ = false;
  bool events_ = true;
  std::string event_prefix_, event_tenant_;
  std::string schema_, path_;
  std::optional<http::Access> read_access_;
  uint8_t ops_ = 31;  // every Op
  std::string default_sort_ = "-created_at";
};

}  // namespace cdx::kit
