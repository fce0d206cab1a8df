// Bulk work (CSV imports and exports): multi-row statements, where rows travel as one JSON array parameter, a
// thousand per statement, on either database (no parameter per value: SQLite binds parameters by name, a
// linear search each; no statement text that grows with the batch); the staging tables of an import on a
// database with one writer; and the per-tenant bound on bulk operations at once.
//   insert_rows(tx, scope, "crm_db.contact_tags", {"contact_id", "tag"}, tags.size(),
//               [&](size_t i, JsonRows& r) { r.cell(tags[i].id); r.cell(tags[i].tag); });
//   auto ticket = BulkGate::enter(scope.tenant_id(), BulkGate::kImport);   // 429 beyond the bound
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "db/database.hpp"

namespace cdx::kit {

inline constexpr size_t kBatchRows = 1000;

// Appends s as a JSON string (s is valid UTF-8: checked at the edge).
void append_json_string(std::string& out, std::string_view s);

// One batch's rows: [[…], […]], each cell a string or null.
class JsonRows {
 public:
  void row() {
    text_ += text_.empty() ? "[[" : "],[";
    first_ = true;
  }
  void cell(std::string_view v) {
    sep();
    append_json_string(text_, v);
  }
  void cell(const std::string& v) { cell(std::string_view(v)); }
  void cell(const char* v) { cell(std::string_view(v)); }
  void cell(const std::optional<std::string>& v) {
    if (v) return cell(std::string_view(*v));
    sep();
    text_ += "null";
  }
  std::string take() {
    std::string out = text_.empty() ? "[]" : std::move(text_) + "]]";
    text_.clear();
    return out;
  }

 private:
  void sep() {
    if (!first_) text_ += ',';
    first_ = false;
  }
  std::string text_;
  bool first_ = true;
};

// `value->>N` of each row of the JSON array parameter `param`, as a table.
std::string json_rows_source(const db::Tx& tx, const char* param);
// INSERT INTO table (tenant_id, columns…) SELECT … from one statement per kBatchRows rows; row(i, rows) adds
// row i's cells, one per column. Columns named in `numeric` are cast to integers.
void insert_rows(db::Tx& tx, const db::TenantScope& scope, const std::string& table,
                 const std::vector<std::string>& columns, size_t n,
                 const std::function<void(size_t, JsonRows&)>& row,
                 const std::vector<std::string>& numeric = {});
// The same with the rows already made: `rows` is JsonRows::take() of at most kBatchRows rows (one statement).
void insert_json_rows(db::Tx& tx, const db::TenantScope& scope, const std::string& table,
                      const std::vector<std::string>& columns, const std::string& rows,
                      const std::vector<std::string>& numeric = {});
// Of `values`, those that `column` of the tenant's rows in `table` holds (a statement per kBatchRows values).
std::unordered_set<std::string> present(db::Tx& tx, const db::TenantScope& scope, const std::string& table,
                                        const std::string& column, const std::vector<std::string>& values);

// The rows of CSV imports on their way in, on a database with one writer (see Kit::import_csv): written a
// chunk at a time in short transactions, read by nothing but the import, applied chunk by chunk once the
// import is decided (its answer committed). <schema>.bulk_imports holds one row per import,
// <schema>.bulk_chunks its rows as JSON text. SQL only; tenant data (row-level security on PostgreSQL, where
// imports stage nothing).
class ImportStaging {
 public:
  // The migration that creates both tables (a module with csv() resources adds it).
  static db::Migration migration(int version, const std::string& schema);
  explicit ImportStaging(std::string schema) : schema_(std::move(schema)) {}

  struct Pending {
    std::string id, resource, actor;  // resource: its plural; actor: the events' actor, JSON
    bool decided = false;
    std::vector<int64_t> chunks;  // sequence numbers still to apply, in order
  };
  // A chunk of rows; the first (seq 0) also records the import.
  void add(db::Tx& tx, const db::TenantScope& scope, const std::string& import_id,
           const std::string& resource, const std::string& actor, int64_t seq, const std::string& rows) const;
  void decide(db::Tx& tx, const db::TenantScope& scope, const std::string& import_id) const;
  std::string chunk(db::Tx& tx, const db::TenantScope& scope, const std::string& import_id,
                    int64_t seq) const;
  void drop_chunk(db::Tx& tx, const db::TenantScope& scope, const std::string& import_id, int64_t seq) const;
  void drop(db::Tx& tx, const db::TenantScope& scope, const std::string& import_id) const;  // and its chunks
  std::vector<Pending> pending(db::Tx& tx, const db::TenantScope& scope) const;
  // Platform: the tenants with an import recorded (where staging is tenant data under RLS: none).
  std::vector<std::string> platform_tenants(db::Tx& tx) const;
  void purge_tenant(db::Tx& tx, const db::TenantScope& scope) const;

 private:
  std::string schema_;
};

// At most kMaxPerTenant bulk operations (CSV imports and exports) of one tenant at once in this process, of
// which kMaxImportsPerTenant imports: beyond, 429 (rate_limited) with Retry-After. A tenant cannot take the
// workers, the memory and the writer's turns of everyone else with parallel bulk work.
class BulkGate {
 public:
  static constexpr int kMaxPerTenant = 2;
  static constexpr int kMaxImportsPerTenant = 1;
  static constexpr int kRetryAfterSeconds = 5;
  enum Kind { kExport, kImport };

  class Ticket {
   public:
    Ticket(std::string tenant_id, Kind kind) : tenant_id_(std::move(tenant_id)), kind_(kind) {}
    Ticket(Ticket&& other) noexcept : tenant_id_(std::move(other.tenant_id_)), kind_(other.kind_) {
      other.tenant_id_.clear();
    }
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    Ticket& operator=(Ticket&&) = delete;
    ~Ticket();

   private:
    std::string tenant_id_;  // empty once moved from
    Kind kind_;
  };
  // Throws Error(kRateLimited) with Retry-After when the tenant is at its bound.
  static Ticket enter(const std::string& tenant_id, Kind kind);
};

}  // namespace cdx::kit
