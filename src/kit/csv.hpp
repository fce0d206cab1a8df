// CSV (RFC 4180) import and export of kit resources: a strict parser (quoted fields, "" escapes, CRLF or
// LF, UTF-8 with an optional BOM), the mapping of a header to a resource's fields, and a writer that quotes
// when needed and defuses spreadsheet formulas.
//   auto rows = import_rows(parse_csv(body), contacts);   // 400 malformed, 422 unknown columns
//   std::string csv = export_csv(contacts, rows_json);   // imports again
#pragma once
#include <nlohmann/json.hpp>

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "kit/resource.hpp"

namespace cdx::kit {

// One import request: at most this many data rows, in a body of at most kImportBodyLimit bytes (the import
// routes' own body limit; the server's, when larger, applies instead). 100 000 typical contact rows take
// about 10 MiB.
inline constexpr size_t kMaxImportRows = 100'000;
inline constexpr size_t kImportBodyLimit = size_t{32} << 20;
// Columns a record may have: far above any real file, far below what 32 MiB of commas would make.
inline constexpr size_t kMaxImportColumns = 256;

struct CsvRecord {
  int64_t line = 0;  // 1-based line where the record starts
  std::vector<std::string> fields;
};

// Reads records one at a time from text that stays where it is: memory is one record whatever the size. The
// text is checked once, when the reader is made (400 for text that is not UTF-8 or holds control characters).
class CsvReader {
 public:
  explicit CsvReader(std::string_view text);
  // The next record into rec (blank lines skipped); false at the end. Throws Error 400 for malformed CSV, 422
  // for a record of more than kMaxImportColumns fields.
  bool next(CsvRecord& rec);

 private:
  std::string_view text_;
  size_t at_ = 0;
  int64_t line_ = 1;
};

// Throws Error (400) for malformed CSV or text that is not UTF-8; skips blank lines. Stops with 422 as
// soon as the text holds more than the header and kMaxImportRows records, or a record has more than
// kMaxImportColumns fields, so a body of tiny records cannot make millions of objects first.
std::vector<CsvRecord> parse_csv(std::string_view text);

std::string csv_field(std::string_view value);
std::string csv_line(const std::vector<std::string>& fields);  // ends in CRLF

// One data row as a field map for the resource's rules, with its row number (the header is row 1) and the
// problems found before the rules ran (a wrong number of fields).
struct ImportRow {
  int64_t row = 0;
  nlohmann::json fields = nlohmann::json::object();
  std::vector<FieldError> errors;
};

// A header row mapped to the resource's fields (see import_rows), and each data record as a field map.
class ImportColumns {
 public:
  // Throws 422 for an unknown or repeated column.
  ImportColumns(const CsvRecord& header, const Resource& r);
  // Data record `rec` as row number `row` (the header is row 1).
  ImportRow row(const CsvRecord& rec, int64_t row) const;

 private:
  std::vector<std::pair<const Field*, std::string>> columns_;  // the field and the member ("" for none)
};

// Maps records to field maps by the header row: columns are the resource's writable fields, "<object>.<key>"
// for object fields (their declared members only, when they declare some), lists split on ';'; id,
// created_at, updated_at and read-only fields are ignored, so an export imports again. Throws 422 for an
// unknown or repeated column, no header, or more than kMaxImportRows rows. The values go through the
// resource's body rules.
std::vector<ImportRow> import_rows(const std::vector<CsvRecord>& records, const Resource& r);

// The columns of a resource's CSV: its fields, with free-form objects spread over the keys given
// ("custom.<key>"). Streams: the header once, then the rows page by page.
class CsvLayout {
 public:
  CsvLayout(const Resource& r, const std::map<std::string, std::set<std::string>>& free_keys);
  std::string header() const;
  std::string rows(const nlohmann::json& rows) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::pair<const Field*, std::string>> columns_, free_;
};

// The rows (the kit's JSON) as CSV with a header row.
std::string export_csv(const Resource& r, const nlohmann::json& rows);

// One CSV row that could not be imported: its 1-based line number in the file and what was wrong.
struct RowError {
  int64_t row = 0;
  std::vector<FieldError> errors;
};

// The ids of created rows (UUIDs: 36 characters) kept as the JSON text of the report's "ids" array
// ("a","b",…): 100 000 of them take 39 bytes each, not a string object each, and the report's answer is made
// from that text in place (take_json).
class IdList {
 public:
  static constexpr size_t kWidth = 36;
  void push_back(std::string_view id) {
    if (id.size() != kWidth) throw std::logic_error("an id of an import is a UUID");
    text_ += '"';
    text_.append(id);
    text_ += "\",";
  }
  // Room for n ids, and some before them for what the answer puts in front.
  void reserve(size_t n) { text_.reserve(n * (kWidth + 3) + 4096); }
  size_t size() const { return text_.size() / (kWidth + 3); }
  bool empty() const { return text_.empty(); }
  std::string operator[](size_t i) const { return std::string(view(i)); }
  std::string_view view(size_t i) const {
    return std::string_view(text_).substr(i * (kWidth + 3) + 1, kWidth);
  }
  // The ids as the inside of a JSON array ("a","b"); the list is empty afterwards.
  std::string take_json() {
    std::string out = std::move(text_);
    if (!out.empty()) out.pop_back();  // the last comma
    text_.clear();
    return out;
  }
  void clear() { text_.clear(); }

 private:
  std::string text_;
};

struct ImportReport {
  int64_t rows = 0;     // data rows read
  int64_t created = 0;  // rows stored
  std::vector<RowError> errors;
  IdList ids;  // of the created objects, in row order
};
nlohmann::json to_json(const ImportReport& r);

// Thrown by an all-or-nothing import with bad rows (nothing was stored): the import route answers 422 with
// the field errors ("row 3: email") and the whole report.
struct ImportFailed : std::exception {
  explicit ImportFailed(ImportReport r) : report(std::move(r)) {}
  const char* what() const noexcept override { return "import failed"; }
  ImportReport report;
};

}  // namespace cdx::kit
