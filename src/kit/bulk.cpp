#include "kit/bulk.hpp"

#include <algorithm>

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

void insert_rows(db::Tx& tx, const db::TenantScope& scope, const std::string& table,
                 const std::vector<std::string>& columns, size_t n,
                 const std::function<void(size_t, JsonRows&)>& row, const std::vector<std::string>& numeric) {
  std::string sql = "INSERT INTO " + table + " (tenant_id";
  for (const auto& c : columns) sql += ", " + c;
  sql += ") SELECT CAST($2 AS TEXT)";
  for (size_t i = 0; i < columns.size(); ++i) {
    const std::string cell = "value->>" + std::to_string(i);
    const bool number = std::find(numeric.begin(), numeric.end(), columns[i]) != numeric.end();
    sql += ", " + (number ? "CAST(" + cell + " AS BIGINT)" : cell);
  }
  sql += " FROM " + json_rows_source(tx, "$1");
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

}  // namespace cdx::kit
