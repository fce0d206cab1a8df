// Multi-row statements for bulk work (CSV imports): rows travel as one JSON array parameter, a thousand per
// statement, on either database: no parameter per value (SQLite binds parameters by name, a linear search
// each) and no statement text that grows with the batch.
//   insert_rows(tx, scope, "crm_db.contact_tags", {"contact_id", "tag"}, tags.size(),
//               [&](size_t i, JsonRows& r) { r.cell(tags[i].id); r.cell(tags[i].tag); });
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
// Of `values`, those that `column` of the tenant's rows in `table` holds (a statement per kBatchRows values).
std::unordered_set<std::string> present(db::Tx& tx, const db::TenantScope& scope, const std::string& table,
                                        const std::string& column, const std::vector<std::string>& values);

}  // namespace cdx::kit
