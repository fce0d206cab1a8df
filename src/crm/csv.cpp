#include "crm/csv.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "common/validate.hpp"

namespace cdx::crm {

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

const std::vector<std::string>& contact_columns() {
  static const std::vector<std::string> k = {"first_name", "last_name", "email",           "phone", "title",
                                             "company_id", "owner_id",  "lifecycle_stage", "tags"};
  return k;
}

const std::vector<std::string>& company_columns() {
  static const std::vector<std::string> k = {"name", "domain", "industry", "size", "owner_id"};
  return k;
}

const std::vector<std::string>& address_keys() {
  static const std::vector<std::string> k = {"street", "city", "region", "postal_code", "country"};
  return k;
}

bool ignored_column(const std::string& c) { return c == "id" || c == "created_at" || c == "updated_at"; }

// Keys of the custom objects, sorted, for export columns.
template <class T>
std::vector<std::string> custom_keys(const std::vector<T>& items) {
  std::set<std::string> keys;
  for (const auto& i : items)
    if (i.custom.is_object())
      for (const auto& [k, _] : i.custom.items()) keys.insert(k);
  return {keys.begin(), keys.end()};
}

std::string custom_cell(const json& custom, const std::string& key) {
  if (!custom.is_object() || !custom.contains(key) || custom.at(key).is_null()) return "";
  const json& v = custom.at(key);
  return v.is_string() ? v.get<std::string>() : v.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string opt(const std::optional<std::string>& v) { return v.value_or(""); }

}  // namespace

std::vector<CsvRecord> parse_csv(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  if (!clean_text(text, true)) {
    // Say where: the first line that is not clean text (a line never splits a UTF-8 sequence).
    int64_t line = 1;
    for (size_t start = 0; start < text.size(); ++line) {
      const size_t nl = text.find('\n', start);
      const std::string_view l =
          text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
      if (!clean_text(l, true)) break;
      if (nl == std::string_view::npos) break;
      start = nl + 1;
    }
    throw Error(Code::kInvalidRequest,
                fmt::format("The CSV body must be UTF-8 text without control characters (line {}).", line));
  }
  std::vector<CsvRecord> out;
  CsvRecord rec;
  std::string field;
  int64_t line = 1;
  rec.line = 1;
  bool in_quotes = false, quoted = false, record_has_data = false;
  size_t i = 0;
  auto end_field = [&] {
    if (rec.fields.size() == kMaxImportColumns)
      throw Error::validation(
          {{"body", fmt::format("line {} has more than {} fields", rec.line, kMaxImportColumns)}});
    rec.fields.push_back(std::move(field));
    field.clear();
    quoted = false;
  };
  auto end_record = [&] {
    end_field();
    const bool blank = rec.fields.size() == 1 && rec.fields[0].empty() && !record_has_data;
    if (!blank && out.size() == kMaxImportRows + 1)  // the header and the rows allowed
      throw Error::validation({{"body", fmt::format("holds more than {} rows; import at most {} per request",
                                                    kMaxImportRows, kMaxImportRows)}});
    if (!blank) out.push_back(std::move(rec));
    rec = CsvRecord{};
    rec.line = line;
    record_has_data = false;
  };
  while (i < text.size()) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          i += 2;
          continue;
        }
        in_quotes = false;
        ++i;
        // After a closing quote only a separator or the end of the record may follow.
        if (i < text.size() && text[i] != ',' && text[i] != '\n' && text[i] != '\r')
          malformed(line, "a closing quote must be followed by a comma or the end of the line");
        continue;
      }
      if (c == '\n') ++line;
      field += c;
      ++i;
      continue;
    }
    if (c == '"') {
      if (!field.empty())
        malformed(line, "a quote inside an unquoted field (quote the field and double the quote)");
      in_quotes = quoted = record_has_data = true;
      ++i;
      continue;
    }
    if (c == ',') {
      record_has_data = true;
      end_field();
      ++i;
      continue;
    }
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      ++i;
      ++line;
      end_record();
      continue;
    }
    field += c;
    record_has_data = true;
    ++i;
  }
  if (in_quotes) malformed(rec.line, "a quoted field is never closed");
  if (!field.empty() || !rec.fields.empty() || quoted) end_record();
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

std::vector<ImportRow> import_rows(const std::vector<CsvRecord>& records, ImportKind kind) {
  if (records.empty()) throw Error::validation({{"body", "must start with a header row naming the columns"}});
  if (records.size() - 1 > kMaxImportRows)
    throw Error::validation({{"body", fmt::format("holds {} rows; import at most {} per request",
                                                  records.size() - 1, kMaxImportRows)}});
  const auto& fields = kind == ImportKind::kContacts ? contact_columns() : company_columns();
  std::vector<std::string> header;
  std::vector<FieldError> errors;
  std::set<std::string> seen;
  for (const auto& raw : records[0].fields) {
    const std::string col = lowercase(trim(raw));
    header.push_back(col);
    if (!seen.insert(col).second) {
      errors.push_back({"header", "the column '" + col + "' appears twice"});
      continue;
    }
    if (one_of(fields, col) || ignored_column(col)) continue;
    if (col.rfind("custom.", 0) == 0 && col.size() > 7) continue;
    if (kind == ImportKind::kCompanies && col.rfind("address.", 0) == 0 &&
        one_of(address_keys(), col.substr(8)))
      continue;
    std::string known;
    for (const auto& f : fields) known += (known.empty() ? "" : ", ") + f;
    known += kind == ImportKind::kCompanies
                 ? ", address.<street|city|region|postal_code|country>, custom.<key>"
                 : ", custom.<key>";
    errors.push_back({"header", "unknown column '" + col + "' (known: " + known + ")"});
  }
  if (!errors.empty()) throw Error::validation(std::move(errors));

  std::vector<ImportRow> rows;
  for (size_t r = 1; r < records.size(); ++r) {
    ImportRow row;
    row.row = static_cast<int64_t>(r) + 1;
    const auto& rec = records[r];
    if (rec.fields.size() != header.size()) {
      row.errors.push_back(
          {"row", fmt::format("has {} fields; the header has {}", rec.fields.size(), header.size())});
      rows.push_back(std::move(row));
      continue;
    }
    for (size_t c = 0; c < header.size(); ++c) {
      const std::string& col = header[c];
      std::string value = trim(rec.fields[c]);
      if (value.empty() || ignored_column(col)) continue;
      if (col == "tags") {
        json tags = json::array();
        size_t start = 0;
        while (start <= value.size()) {
          const size_t semi = value.find(';', start);
          std::string tag = trim(std::string_view(value).substr(
              start, semi == std::string::npos ? std::string::npos : semi - start));
          if (!tag.empty()) tags.push_back(std::move(tag));
          if (semi == std::string::npos) break;
          start = semi + 1;
        }
        row.fields["tags"] = std::move(tags);
      } else if (col.rfind("custom.", 0) == 0) {
        row.fields["custom"][col.substr(7)] = std::move(value);
      } else if (col.rfind("address.", 0) == 0) {
        row.fields["address"][col.substr(8)] = std::move(value);
      } else {
        row.fields[col] = std::move(value);
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string export_contacts_csv(const std::vector<Contact>& contacts) {
  const auto custom = custom_keys(contacts);
  std::vector<std::string> header = {"id",         "first_name", "last_name", "email",           "phone",
                                     "title",      "company_id", "owner_id",  "lifecycle_stage", "tags",
                                     "created_at", "updated_at"};
  for (const auto& k : custom) header.push_back("custom." + k);
  std::string out = csv_line(header);
  for (const auto& c : contacts) {
    std::string tags;
    for (const auto& t : c.tags) tags += (tags.empty() ? "" : ";") + t;
    std::vector<std::string> row = {
        c.id,         opt(c.first_name), opt(c.last_name), opt(c.email),      opt(c.phone),
        opt(c.title), opt(c.company_id), opt(c.owner_id),  c.lifecycle_stage, tags,
        c.created_at, c.updated_at};
    for (const auto& k : custom) row.push_back(custom_cell(c.custom, k));
    out += csv_line(row);
  }
  return out;
}

std::string export_companies_csv(const std::vector<Company>& companies) {
  const auto custom = custom_keys(companies);
  std::vector<std::string> header = {"id", "name", "domain", "industry", "size", "owner_id"};
  for (const auto& k : address_keys()) header.push_back("address." + k);
  header.push_back("created_at");
  header.push_back("updated_at");
  for (const auto& k : custom) header.push_back("custom." + k);
  std::string out = csv_line(header);
  for (const auto& c : companies) {
    std::vector<std::string> row = {c.id,        c.name,         opt(c.domain), opt(c.industry),
                                    opt(c.size), opt(c.owner_id)};
    for (const auto& k : address_keys()) row.push_back(custom_cell(c.address, k));
    row.push_back(c.created_at);
    row.push_back(c.updated_at);
    for (const auto& k : custom) row.push_back(custom_cell(c.custom, k));
    out += csv_line(row);
  }
  return out;
}

}  // namespace cdx::crm
