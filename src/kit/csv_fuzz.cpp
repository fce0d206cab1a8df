// libFuzzer target: the CSV import parser (kit/csv.hpp) and the mapping of its records to a real
// resource's fields (CRM contacts). Checks: a bad body is cdx::Error 400 or 422, nothing else; the records
// respect the row and column caps and hold clean text; written again, quoted (RFC 4180) or by the exporter
// (csv_line), they read back as the same fields, the exporter's only change being a quote before a cell a
// spreadsheet would run as a formula; import_rows names only the resource's fields.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/validate.hpp"
#include "crm/resources.hpp"
#include "kit/csv.hpp"

namespace {

using namespace cdx;
using namespace cdx::kit;

void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "csv_fuzz: %s\n", what);
  std::abort();
}

std::optional<std::vector<CsvRecord>> parse(std::string_view text) {
  try {
    return parse_csv(text);
  } catch (const Error& e) {
    require(e.code() == Code::kInvalidRequest || e.code() == Code::kValidationFailed,
            "a CSV failure that is not 400 or 422");
    return std::nullopt;
  }
}

std::string quoted_line(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    out += i ? ",\"" : "\"";
    for (char c : fields[i]) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    out += '"';
  }
  return out + "\n";
}

// A cell the exporter defuses: it starts as a spreadsheet formula would.
bool formula_like(const std::string& v) {
  if (v.empty()) return false;
  const char f = v.front();
  const bool numberish = v.size() > 1 && ((v[1] >= '0' && v[1] <= '9') || v[1] == ' ' || v[1] == '(');
  return f == '=' || f == '@' || f == '\t' || f == '\r' || ((f == '+' || f == '-') && !numberish);
}

const Resource& contacts() {
  static const Resource r = crm::contact_resource();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto records = parse(text);
  if (!records) return 0;
  require(records->size() <= kMaxImportRows + 1, "more rows than allowed");

  std::string quoted, exported = "id\r\n";  // an export starts with its header (and no byte order mark)
  for (const CsvRecord& rec : *records) {
    require(!rec.fields.empty() && rec.fields.size() <= kMaxImportColumns,
            "a record without fields or too many");
    for (const auto& f : rec.fields) require(clean_text(f, true), "a field that is not clean text");
    quoted += quoted_line(rec.fields);
    exported += csv_line(rec.fields);
  }

  // Quoted, every record reads back as it was.
  const auto again = parse(quoted);
  require(again.has_value() && again->size() == records->size(), "quoted records do not read back");
  for (size_t i = 0; i < records->size(); ++i)
    require((*again)[i].fields == (*records)[i].fields, "a quoted record reads back otherwise");

  // Through the exporter: the same fields, but for a quote before formulas; blank records vanish.
  const auto back = parse(exported);
  require(back.has_value(), "the exporter's CSV does not parse");
  size_t j = 1;
  for (const CsvRecord& rec : *records) {
    if (rec.fields.size() == 1 && rec.fields[0].empty()) continue;  // a blank line, skipped
    require(j < back->size() && (*back)[j].fields.size() == rec.fields.size(), "an exported record is lost");
    for (size_t k = 0; k < rec.fields.size(); ++k) {
      const std::string& was = rec.fields[k];
      const std::string& is = (*back)[j].fields[k];
      require(is == was || (formula_like(was) && is == "'" + was), "an exported cell reads back otherwise");
      require(!formula_like(is), "an exported cell runs as a formula");
    }
    ++j;
  }
  require(j == back->size(), "the exporter wrote records that were not there");

  // The records as a CRM contacts import.
  try {
    for (const ImportRow& row : import_rows(*records, contacts())) {
      require(row.fields.is_object(), "an import row that is not an object");
      for (const auto& [name, _] : row.fields.items())
        require(contacts().find(name) != nullptr, "an import row names a field the resource lacks");
    }
  } catch (const Error& e) {
    require(e.code() == Code::kValidationFailed, "an import failure that is not 422");
  }
  return 0;
}
