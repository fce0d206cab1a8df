#include "kit/csv.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>

#include "common/validate.hpp"

namespace cdx::kit {

namespace {

using nlohmann::json;

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

[[noreturn]] void malformed(int64_t line, std::string_view what) {
  throw Error(Code::kInvalidRequest, fmt::format("The CSV body is malformed at line {}: {}.", line, what));
}

bool ignored_column(const std::string& c) { return c == "id" || c == "created_at" || c == "updated_at"; }

std::string cell(const json& v) {
  if (v.is_null()) return "";
  return v.is_string() ? v.get<std::string>() : v.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

CsvReader::CsvReader(std::string_view text) : text_(text) {
  if (text_.substr(0, 3) == "\xEF\xBB\xBF") text_.remove_prefix(3);
  if (!clean_text(text_, true)) {
    // Say where: the first line that is not clean text (a line never splits a UTF-8 sequence).
    int64_t line = 1;
    for (size_t start = 0; start < text_.size(); ++line) {
      const size_t nl = text_.find('\n', start);
      const std::string_view l =
          text_.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
      if (!clean_text(l, true)) break;
      if (nl == std::string_view::npos) break;
      start = nl + 1;
    }
    throw Error(Code::kInvalidRequest,
                fmt::format("The CSV body must be UTF-8 text without control characters (line {}).", line));
  }
}

bool CsvReader::next(CsvRecord& rec) {
  for (;;) {
    if (at_ >= text_.size()) return false;
    rec.fields.clear();
    rec.line = line_;
    std::string field;
    bool in_quotes = false, quoted = false, has_data = false;
    auto end_field = [&] {
      if (rec.fields.size() == kMaxImportColumns)
        throw Error::validation(
            {{"body", fmt::format("line {} has more than {} fields", rec.line, kMaxImportColumns)}});
      rec.fields.push_back(std::move(field));
      field.clear();
      quoted = false;
    };
    while (at_ < text_.size()) {
      const char c = text_[at_];
      if (in_quotes) {
        if (c == '"') {
          if (at_ + 1 < text_.size() && text_[at_ + 1] == '"') {
            field += '"';
            at_ += 2;
            continue;
          }
          in_quotes = false;
          ++at_;
          // After a closing quote only a separator or the end of the record may follow.
          if (at_ < text_.size() && text_[at_] != ',' && text_[at_] != '\n' && text_[at_] != '\r')
            malformed(line_, "a closing quote must be followed by a comma or the end of the line");
          continue;
        }
        if (c == '\n') ++line_;
        field += c;
        ++at_;
        continue;
      }
      if (c == '"') {
        if (!field.empty())
          malformed(line_, "a quote inside an unquoted field (quote the field and double the quote)");
        in_quotes = quoted = has_data = true;
        ++at_;
        continue;
      }
      if (c == ',') {
        has_data = true;
        end_field();
        ++at_;
        continue;
      }
      if (c == '\r' || c == '\n') {
        if (c == '\r' && at_ + 1 < text_.size() && text_[at_ + 1] == '\n') ++at_;
        ++at_;
        ++line_;
        break;
      }
      field += c;
      has_data = true;
      ++at_;
    }
    if (in_quotes) malformed(rec.line, "a quoted field is never closed");
    const bool was_quoted = quoted;
    end_field();
    if (rec.fields.size() == 1 && rec.fields[0].empty() && !has_data && !was_quoted)
      continue;  // a blank line
    return true;
  }
}

std::vector<CsvRecord> parse_csv(std::string_view text) {
  CsvReader reader(text);
  std::vector<CsvRecord> out;
  CsvRecord rec;
  while (reader.next(rec)) {
    if (out.size() == kMaxImportRows + 1)  // the header and the rows allowed
      throw Error::validation({{"body", fmt::format("holds more than {} rows; import at most {} per request",
                                                    kMaxImportRows, kMaxImportRows)}});
    out.push_back(std::move(rec));
    rec = CsvRecord{};
  }
  return out;
}

std::string csv_field(std::string_view value) {
  std::string v(value);
  // A cell starting with = @ (or + - before a non-number) runs as a formula in spreadsheets: prefix a quote.
  if (!v.empty()) {
    const char f = v.front();
    const bool numberish = v.size() > 1 && ((v[1] >= '0' && v[1] <= '9') || v[1] == ' ' || v[1] == '(');
    if (f == '=' || f == '@' || f == '\t' || f == '\r' || ((f == '+' || f == '-') && !numberish))
      v.insert(0, "'");
  }
  if (v.find_first_of(",\"\r\n") == std::string::npos && (v.empty() || (v.front() != ' ' && v.back() != ' ')))
    return v;
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string csv_line(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ',';
    out += csv_field(fields[i]);
  }
  return out + "\r\n";
}

ImportColumns::ImportColumns(const CsvRecord& header, const Resource& r) {
  // A column is a field, or "<object>.<member>"; lists are split on ';'.
  std::vector<FieldError> errors;
  std::set<std::string> seen;
  for (const auto& raw : header.fields) {
    const std::string col = lowercase(trim(raw));
    columns_.emplace_back(nullptr, "");
    if (!seen.insert(col).second) {
      errors.push_back({"header", "the column '" + col + "' appears twice"});
      continue;
    }
    if (ignored_column(col)) continue;
    const size_t dot = col.find('.');
    const Field* f = r.find(col.substr(0, dot));
    if (f && f->is_read_only) continue;  // set by the server: an export's column, ignored like id
    if (f) {
      if (dot == std::string::npos && f->type != Type::kObject) {
        columns_.back().first = f;
        continue;
      }
      const std::string member = dot == std::string::npos ? "" : col.substr(dot + 1);
      if (f->type == Type::kObject && !member.empty() &&
          (f->properties.empty() || std::any_of(f->properties.begin(), f->properties.end(),
                                                [&](const Field& m) { return m.name == member; }))) {
        columns_.back() = {f, member};
        continue;
      }
    }
    std::string known;
    for (const auto& x : r.fields()) {
      if (x.is_read_only) continue;
      if (x.type != Type::kObject) {
        known += (known.empty() ? "" : ", ") + x.name;
      } else if (x.properties.empty()) {
        known += (known.empty() ? "" : ", ") + x.name + ".<key>";
      } else {
        std::string members;
        for (const auto& m : x.properties) members += (members.empty() ? "" : "|") + m.name;
        known += (known.empty() ? "" : ", ") + x.name + ".<" + members + ">";
      }
    }
    errors.push_back({"header", "unknown column '" + col + "' (known: " + known + ")"});
  }
  if (!errors.empty()) throw Error::validation(std::move(errors));
}

ImportRow ImportColumns::row(const CsvRecord& rec, int64_t n) const {
  ImportRow row;
  row.row = n;
  if (rec.fields.size() != columns_.size()) {
    row.errors.push_back(
        {"row", fmt::format("has {} fields; the header has {}", rec.fields.size(), columns_.size())});
    return row;
  }
  for (size_t c = 0; c < columns_.size(); ++c) {
    const auto& [f, member] = columns_[c];
    std::string value = trim(rec.fields[c]);
    if (!f || value.empty()) continue;
    if (!member.empty()) {
      row.fields[f->name][member] = std::move(value);
    } else if (f->type == Type::kTextList) {
      json items = json::array();
      size_t start = 0;
      while (start <= value.size()) {
        const size_t semi = value.find(';', start);
        std::string item = trim(std::string_view(value).substr(
            start, semi == std::string::npos ? std::string::npos : semi - start));
        if (!item.empty()) items.push_back(std::move(item));
        if (semi == std::string::npos) break;
        start = semi + 1;
      }
      row.fields[f->name] = std::move(items);
    } else if (f->type == Type::kInteger) {
      int64_t v = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      row.fields[f->name] = ec == std::errc() && p == value.data() + value.size() ? json(v) : json(value);
    } else if (f->type == Type::kBoolean) {
      row.fields[f->name] = value == "true" ? json(true) : value == "false" ? json(false) : json(value);
    } else {
      row.fields[f->name] = std::move(value);
    }
  }
  return row;
}

std::vector<ImportRow> import_rows(const std::vector<CsvRecord>& records, const Resource& r) {
  if (records.empty()) throw Error::validation({{"body", "must start with a header row naming the columns"}});
  if (records.size() - 1 > kMaxImportRows)
    throw Error::validation({{"body", fmt::format("holds {} rows; import at most {} per request",
                                                  records.size() - 1, kMaxImportRows)}});
  const ImportColumns columns(records[0], r);
  std::vector<ImportRow> rows;
  rows.reserve(records.size() - 1);
  for (size_t n = 1; n < records.size(); ++n)
    rows.push_back(columns.row(records[n], static_cast<int64_t>(n) + 1));
  return rows;
}

CsvLayout::CsvLayout(const Resource& r, const std::map<std::string, std::set<std::string>>& free_keys) {
  // Columns: id, the fields (declared object members as "<object>.<member>"), the timestamps, then the
  // members of free-form objects ("custom.<key>", sorted), so an export imports again.
  header_ = {"id"};
  for (const Field& f : r.fields()) {
    if (!f.is_column || !f.rendered()) continue;
    if (f.type == Type::kObject && f.properties.empty()) {
      if (auto it = free_keys.find(f.name); it != free_keys.end())
        for (const auto& k : it->second) free_.emplace_back(&f, k);
    } else if (f.type == Type::kObject) {
      for (const auto& m : f.properties)
        columns_.emplace_back(&f, m.name), header_.push_back(f.name + "." + m.name);
    } else {
      columns_.emplace_back(&f, ""), header_.push_back(f.name);
    }
  }
  header_.push_back("created_at");
  header_.push_back("updated_at");
  for (const auto& [f, k] : free_) header_.push_back(f->name + "." + k);
}

std::string CsvLayout::header() const { return csv_line(header_); }

std::string CsvLayout::rows(const json& rows) const {
  std::string out;
  std::vector<std::string> line;
  for (const auto& row : rows) {
    line.assign(1, row.value("id", ""));
    auto value = [&](const Field* f, const std::string& member) -> std::string {
      const json& v = row.contains(f->name) ? row[f->name] : json();
      if (!member.empty()) return v.is_object() && v.contains(member) ? cell(v[member]) : "";
      if (f->type == Type::kTextList && v.is_array()) {
        std::string joined;
        for (const auto& item : v) joined += (joined.empty() ? "" : ";") + cell(item);
        return joined;
      }
      return cell(v);
    };
    for (const auto& [f, m] : columns_) line.push_back(value(f, m));
    line.push_back(row.value("created_at", ""));
    line.push_back(row.value("updated_at", ""));
    for (const auto& [f, m] : free_) line.push_back(value(f, m));
    out += csv_line(line);
  }
  return out;
}

std::string export_csv(const Resource& r, const json& rows) {
  std::map<std::string, std::set<std::string>> keys;
  for (const Field& f : r.fields())
    if (f.type == Type::kObject && f.properties.empty())
      for (const auto& row : rows)
        if (row.contains(f.name) && row[f.name].is_object())
          for (const auto& [k, _] : row[f.name].items()) keys[f.name].insert(k);
  const CsvLayout layout(r, keys);
  return layout.header() + layout.rows(rows);
}

}  // namespace cdx::kit
