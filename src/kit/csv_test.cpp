#include "kit/csv.hpp"

#include "kit/bulk.hpp"

#include <gtest/gtest.h>

namespace cdx::kit {
namespace {

using nlohmann::json;

Code code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code();
  }
  return Code::kInternal;
}

TEST(Csv, ParsesQuotesEscapesAndBothLineEndings) {
  auto r = parse_csv(
      "\xEF\xBB\xBF"
      "a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",\"multi\nline\"\n\n1,,3");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].fields, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(r[1].fields, (std::vector<std::string>{"x, y", "say \"hi\"", "multi\nline"}));
  EXPECT_EQ(r[1].line, 2);
  EXPECT_EQ(r[2].fields, (std::vector<std::string>{"1", "", "3"}));
  EXPECT_EQ(r[2].line, 5);
}

TEST(Csv, RejectsMalformedInputWith400) {
  EXPECT_EQ(code_of([] { parse_csv("a,\"open\n"); }), Code::kInvalidRequest);
  EXPECT_EQ(code_of([] { parse_csv("a,b\"c\n"); }), Code::kInvalidRequest);
  EXPECT_EQ(code_of([] { parse_csv("\"a\"b,c\n"); }), Code::kInvalidRequest);
  EXPECT_EQ(code_of([] { parse_csv("a,\xFF\n"); }), Code::kInvalidRequest);
  EXPECT_EQ(code_of([] { parse_csv(std::string("a,b\0c\n", 6)); }), Code::kInvalidRequest);
  EXPECT_TRUE(parse_csv("").empty());
  EXPECT_TRUE(parse_csv("\n\r\n").empty());
}

TEST(Csv, WriterQuotesWhenNeededAndDefusesFormulas) {
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csv_field("=SUM(A1)"), "'=SUM(A1)");
  EXPECT_EQ(csv_field("@cmd"), "'@cmd");
  EXPECT_EQ(csv_field("-x"), "'-x");
  EXPECT_EQ(csv_field("+49 30 123"), "+49 30 123");  // a phone number stays as it is
  EXPECT_EQ(csv_line({"a", "", "b"}), "a,,b\r\n");
  // What the writer writes, the parser reads back.
  auto back = parse_csv(csv_line({"x, y", "q\"q", "n\nl", ""}));
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].fields, (std::vector<std::string>{"x, y", "q\"q", "n\nl", ""}));
}

// Declarations shaped like the CRM's contacts and companies.
const Resource& people() {
  static const Resource r = [] {
    Resource d("crm", "contact", "contacts");
    d.field(text("first_name", 100))
        .field(text("email", 254))
        .field(text_list("tags", 50, 50).defaults(json::array()))
        .field(datetime("seen_at").read_only())
        .field(object("custom", 16384).defaults(json::object()));
    d.seal();
    return d;
  }();
  return r;
}
const Resource& orgs() {
  static const Resource r = [] {
    Resource d("crm", "company", "companies");
    d.field(text("name", 200).required()).field(object("address", {text("street", 200), text("city", 200)}));
    d.seal();
    return d;
  }();
  return r;
}

TEST(Csv, ImportRowsMapTheHeaderToFields) {
  auto rows = import_rows(parse_csv("ID,First_Name,email,tags,custom.source,created_at\n"
                                    "x,Ann,ann@x.com, vip ; beta ;,fair,2026\n"
                                    "y,Bob\n"),
                          people());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].row, 2);
  EXPECT_EQ(rows[0].fields, json({{"first_name", "Ann"},
                                  {"email", "ann@x.com"},
                                  {"tags", {"vip", "beta"}},
                                  {"custom", {{"source", "fair"}}}}));
  EXPECT_TRUE(rows[0].errors.empty());
  ASSERT_EQ(rows[1].errors.size(), 1u);  // wrong number of fields
  EXPECT_EQ(rows[1].row, 3);
  auto companies = import_rows(parse_csv("name,address.city\nAcme,Berlin\n"), orgs());
  EXPECT_EQ(companies[0].fields, json({{"name", "Acme"}, {"address", {{"city", "Berlin"}}}}));
}

TEST(Csv, ImportRejectsUnknownOrRepeatedColumns) {
  EXPECT_EQ(code_of([] { import_rows(parse_csv("first_name,shoe_size\nA,9\n"), people()); }),
            Code::kValidationFailed);
  EXPECT_EQ(code_of([] { import_rows(parse_csv("email,Email\na@b.co,a@b.co\n"), people()); }),
            Code::kValidationFailed);
  EXPECT_EQ(code_of([] { import_rows(parse_csv("name,address.planet\nA,Mars\n"), orgs()); }),
            Code::kValidationFailed);
  EXPECT_EQ(code_of([] { import_rows({}, people()); }), Code::kValidationFailed);
  std::string big = "first_name\n";
  for (size_t i = 0; i <= kMaxImportRows; ++i) big += "a\n";
  EXPECT_EQ(code_of([&] { import_rows(parse_csv(big), people()); }), Code::kValidationFailed);
  // The parser itself stops: a record of too many fields, or rows past the limit, never become objects.
  EXPECT_EQ(code_of([] { parse_csv("first_name\n" + std::string(kMaxImportColumns, ',') + "\n"); }),
            Code::kValidationFailed);
  EXPECT_EQ(code_of([&] { parse_csv(big); }), Code::kValidationFailed);
  EXPECT_EQ(parse_csv("first_name\n" + std::string(kMaxImportColumns - 1, ',') + "\n").at(1).fields.size(),
            kMaxImportColumns);
}

TEST(Csv, ExportWritesEveryFieldAndCustomKeys) {
  const json rows = json::array({{{"id", "01930000-0000-7000-8000-000000000001"},
                                  {"first_name", "Ann"},
                                  {"email", "ann@x.com"},
                                  {"tags", {"vip", "beta"}},
                                  {"seen_at", nullptr},
                                  {"custom", {{"source", "fair"}, {"score", 7}}},
                                  {"created_at", "2026-01-01T00:00:00.000000Z"},
                                  {"updated_at", "2026-01-01T00:00:00.000000Z"}}});
  auto back = parse_csv(export_csv(people(), rows));
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].fields,
            (std::vector<std::string>{"id", "first_name", "email", "tags", "seen_at", "created_at",
                                      "updated_at", "custom.score", "custom.source"}));
  EXPECT_EQ(back[1].fields[1], "Ann");
  EXPECT_EQ(back[1].fields[3], "vip;beta");
  EXPECT_EQ(back[1].fields.back(), "fair");
  // An export imports again (id, the timestamps and read-only fields are ignored).
  auto again = import_rows(back, people());
  EXPECT_EQ(again[0].fields.at("first_name"), "Ann");
  EXPECT_EQ(again[0].fields.at("tags"), json({"vip", "beta"}));
  EXPECT_FALSE(again[0].fields.contains("id"));
  EXPECT_FALSE(again[0].fields.contains("seen_at"));
}

TEST(Csv, ReaderGivesOneRecordAtATime) {
  CsvReader reader("a,b\n\n\"x\ny\",2\r\nlast,1");
  CsvRecord rec;
  std::vector<std::vector<std::string>> got;
  std::vector<int64_t> lines;
  while (reader.next(rec)) got.push_back(rec.fields), lines.push_back(rec.line);
  EXPECT_EQ(got, (std::vector<std::vector<std::string>>{{"a", "b"}, {"x\ny", "2"}, {"last", "1"}}));
  EXPECT_EQ(lines, (std::vector<int64_t>{1, 3, 5}));
  EXPECT_FALSE(reader.next(rec));
}

TEST(Csv, IdsAreKeptAsTheTextOfTheirJsonArray) {
  IdList ids;
  ids.reserve(2);
  const std::string a = "01939a3c-0000-7000-8000-000000000001", b = "01939a3c-0000-7000-8000-000000000002";
  ids.push_back(a);
  ids.push_back(b);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[1], b);
  EXPECT_EQ(ids.take_json(), "\"" + a + "\",\"" + b + "\"");
  EXPECT_TRUE(ids.empty());
  EXPECT_THROW(ids.push_back("short"), std::logic_error);
}

TEST(BulkGate, OneImportAndTwoBulkOperationsPerTenant) {
  auto import_a = BulkGate::enter("a", BulkGate::kImport);
  EXPECT_EQ(code_of([] { BulkGate::enter("a", BulkGate::kImport); }), Code::kRateLimited);
  auto other_tenant = BulkGate::enter("b", BulkGate::kImport);  // per tenant
  {
    auto export_a = BulkGate::enter("a", BulkGate::kExport);
    try {
      BulkGate::enter("a", BulkGate::kExport);
      FAIL() << "a third bulk operation got in";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Code::kRateLimited);
      bool retry_after = false;
      for (const auto& [name, value] : e.headers()) retry_after = retry_after || name == "Retry-After";
      EXPECT_TRUE(retry_after);
    }
  }
  auto second_export = BulkGate::enter("a", BulkGate::kExport);  // the first export's slot is free again
}

}  // namespace
}  // namespace cdx::kit
