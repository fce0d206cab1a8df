#include "kit/bulk.hpp"

#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "common/clock.hpp"
#include "common/error.hpp"

namespace cdx::kit {

void append_json_string(std::string& out, std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  out += '"';
  size_t run = 0;  // runs of characters that need no escape are copied at once
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c != '"' && c != '\\' && c >= 0x20) continue;
    out.append(s, run, i - run);
    run = i + 1;
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  out.append(s, run, s.size() - run);
  out += '"';
}

std::string json_rows_source(const db::Tx& tx, const char* param) {
  return tx.backend() == db::Backend::kPostgres
             ? std::string("jsonb_array_elements(CAST(") + param + " AS jsonb))"
             : std::string("json_each(") + param + ")";
}

namespace {

std::string insert_sql(const db::Tx& tx, const std::string& table, const std::vector<std::string>& columns,
                       const std::vector<std::string>& numeric) {
  std::string sql = "INSERT INTO " + table + " (tenant_id";
  for (const auto& c : columns) sql += ", " + c;
  sql += ") SELECT CAST($2 AS TEXT)";
  for (size_t i = 0; i < columns.size(); ++i) {
    const std::string cell = "value->>" + std::to_string(i);
    const bool number = std::find(numeric.begin(), numeric.end(), columns[i]) != numeric.end();
    sql += ", " + (number ? "CAST(" + cell + " AS BIGINT)" : cell);
  }
  return sql + " FROM " + json_rows_source(tx, "$1");
}

}  // namespace

void insert_rows(db::Tx& tx, const db::TenantScope& scope, const std::string& table,
                 const std::vector<std::string>& columns, size_t n,
                 const std::function<void(size_t, JsonRows&)>& row, const std::vector<std::string>& numeric) {
  const std::string sql = insert_sql(tx, table, columns, numeric);
  JsonRows rows;
  for (size_t start = 0; start < n; start += kBatchRows) {
    for (size_t i = start; i < std::min(n, start + kBatchRows); ++i) {
      rows.row();
      row(i, rows);
    }
    const std::string batch = rows.take();
    tx.query(sql, {batch, scope.tenant_id()});
  }
}

void insert_json_rows(db::Tx& tx, const db::TenantScope& scope, const std::string& table,
                      const std::vector<std::string>& columns, const std::string& rows,
                      const std::vector<std::string>& numeric) {
  tx.query(insert_sql(tx, table, columns, numeric), {rows, scope.tenant_id()});
}

std::unordered_set<std::string> present(db::Tx& tx, const db::TenantScope& scope, const std::string& table,
                                        const std::string& column, const std::vector<std::string>& values) {
  std::unordered_set<std::string> out;
  const std::string source = tx.backend() == db::Backend::kPostgres
                                 ? "json_array_elements_text(CAST($2 AS json)) AS v (value)"
                                 : "json_each($2)";
  const std::string sql = "SELECT " + column + " FROM " + table + " WHERE tenant_id = $1 AND " + column +
                          " IN (SELECT value FROM " + source + ")";
  std::string batch;
  for (size_t start = 0; start < values.size(); start += kBatchRows) {
    batch = "[";
    for (size_t i = start; i < std::min(values.size(), start + kBatchRows); ++i) {
      if (i > start) batch += ',';
      append_json_string(batch, values[i]);
    }
    batch += ']';
    for (const auto& r : tx.query(sql, {scope.tenant_id(), batch}).rows) out.insert(r.text(0));
  }
  return out;
}

db::Migration ImportStaging::migration(int version, const std::string& schema) {
  db::Migration m;
  m.version = version;
  m.name = "staging of CSV imports";
  m.sql = "CREATE TABLE " + schema +
          ".bulk_imports (\n"
          "  id TEXT PRIMARY KEY,\n"
          "  tenant_id TEXT NOT NULL,\n"
          "  resource TEXT NOT NULL,\n"
          "  actor TEXT NOT NULL,\n"
          "  decided INTEGER NOT NULL,\n"  // 1 once its answer committed: it is finished even after a stop
          "  created_at TEXT NOT NULL\n"
          ");\n"
          "CREATE INDEX bulk_imports_tenant ON " +
          schema +
          ".bulk_imports (tenant_id, created_at);\n"
          "CREATE TABLE " +
          schema +
          ".bulk_chunks (\n"
          "  tenant_id TEXT NOT NULL,\n"
          "  import_id TEXT NOT NULL,\n"
          "  seq INTEGER NOT NULL,\n"
          "  rows TEXT NOT NULL,\n"
          "  PRIMARY KEY (import_id, seq)\n"
          ");\n"
          "CREATE INDEX bulk_chunks_tenant ON " +
          schema + ".bulk_chunks (tenant_id);\n";
  m.tenant_tables = {schema + ".bulk_imports", schema + ".bulk_chunks"};
  return m;
}

void ImportStaging::add(db::Tx& tx, const db::TenantScope& scope, const std::string& import_id,
                        const std::string& resource, const std::string& actor, int64_t seq,
                        const std::string& rows) const {
  if (seq == 0)
    tx.query("INSERT INTO " + schema_ +
                 ".bulk_imports (id, tenant_id, resource, actor, decided, created_at) VALUES ($1, $2, $3, "
                 "$4, 0, $5)",
             {import_id, scope.tenant_id(), resource, actor, format_rfc3339(Clock::now())});
  tx.query(
      "INSERT INTO " + schema_ + ".bulk_chunks (tenant_id, import_id, seq, rows) VALUES ($1, $2, $3, $4)",
      {scope.tenant_id(), import_id, seq, rows});
}

void ImportStaging::decide(db::Tx& tx, const db::TenantScope& scope, const std::string& import_id) const {
  tx.query("UPDATE " + schema_ + ".bulk_imports SET decided = 1 WHERE tenant_id = $1 AND id = $2",
           {scope.tenant_id(), import_id});
}

std::string ImportStaging::chunk(db::Tx& tx, const db::TenantScope& scope, const std::string& import_id,
                                 int64_t seq) const {
  auto res = tx.query(
      "SELECT rows FROM " + schema_ + ".bulk_chunks WHERE tenant_id = $1 AND import_id = $2 AND seq = $3",
      {scope.tenant_id(), import_id, seq});
  if (res.empty())
    throw std::runtime_error("staged chunk " + std::to_string(seq) + " of import " + import_id +
                             " is missing");
  return res.rows[0].text(0);
}

void ImportStaging::drop_chunk(db::Tx& tx, const db::TenantScope& scope, const std::string& import_id,
                               int64_t seq) const {
  tx.query("DELETE FROM " + schema_ + ".bulk_chunks WHERE tenant_id = $1 AND import_id = $2 AND seq = $3",
           {scope.tenant_id(), import_id, seq});
}

void ImportStaging::drop(db::Tx& tx, const db::TenantScope& scope, const std::string& import_id) const {
  tx.query("DELETE FROM " + schema_ + ".bulk_chunks WHERE tenant_id = $1 AND import_id = $2",
           {scope.tenant_id(), import_id});
  tx.query("DELETE FROM " + schema_ + ".bulk_imports WHERE tenant_id = $1 AND id = $2",
           {scope.tenant_id(), import_id});
}

std::vector<ImportStaging::Pending> ImportStaging::pending(db::Tx& tx, const db::TenantScope& scope) const {
  std::vector<Pending> out;
  for (const auto& r : tx.query("SELECT id, resource, actor, decided FROM " + schema_ +
                                    ".bulk_imports WHERE tenant_id = $1 ORDER BY created_at, id",
                                {scope.tenant_id()})
                           .rows)
    out.push_back({r.text(0), r.text(1), r.text(2), r.integer(3) != 0, {}});
  for (auto& p : out)
    for (const auto& r : tx.query("SELECT seq FROM " + schema_ +
                                      ".bulk_chunks WHERE tenant_id = $1 AND import_id = $2 ORDER BY seq",
                                  {scope.tenant_id(), p.id})
                             .rows)
      p.chunks.push_back(r.integer(0));
  return out;
}

std::vector<std::string> ImportStaging::platform_tenants(db::Tx& tx) const {
  std::vector<std::string> out;
  for (const auto& r : tx.query("SELECT DISTINCT tenant_id FROM " + schema_ + ".bulk_imports").rows)
    out.push_back(r.text(0));
  return out;
}

void ImportStaging::purge_tenant(db::Tx& tx, const db::TenantScope& scope) const {
  tx.query("DELETE FROM " + schema_ + ".bulk_chunks WHERE tenant_id = $1", {scope.tenant_id()});
  tx.query("DELETE FROM " + schema_ + ".bulk_imports WHERE tenant_id = $1", {scope.tenant_id()});
}

namespace {

struct GateState {
  std::mutex mutex;
  std::unordered_map<std::string, std::pair<int, int>> running;  // tenant → (bulk operations, imports)
};

GateState& gate() {
  static GateState state;
  return state;
}

}  // namespace

BulkGate::Ticket BulkGate::enter(const std::string& tenant_id, Kind kind) {
  GateState& g = gate();
  std::lock_guard lock(g.mutex);
  auto& [all, imports] = g.running[tenant_id];
  const bool import_bound = kind == kImport && imports >= kMaxImportsPerTenant;
  if (import_bound || all >= kMaxPerTenant) {
    if (all == 0) g.running.erase(tenant_id);
    throw Error(Code::kRateLimited,
                import_bound
                    ? "Another import of this tenant is running; one runs at a time. Retry when it has "
                      "finished."
                    : "This tenant runs " + std::to_string(kMaxPerTenant) +
                          " imports and exports already; retry when one has finished.")
        .with_header("Retry-After", std::to_string(kRetryAfterSeconds));
  }
  ++all;
  if (kind == kImport) ++imports;
  return Ticket(tenant_id, kind);
}

BulkGate::Ticket::~Ticket() {
  if (tenant_id_.empty()) return;
  GateState& g = gate();
  std::lock_guard lock(g.mutex);
  auto it = g.running.find(tenant_id_);
  if (it == g.running.end()) return;
  --it->second.first;
  if (kind_ == kImport) --it->second.second;
  if (it->second.first <= 0) g.running.erase(it);
}

}  // namespace cdx::kit
