#include "crm/model.hpp"

#include "crm/resources.hpp"
#include "kit/kit.hpp"

#include <gtest/gtest.h>

#include "common/ids.hpp"
#include "http/pagination.hpp"

namespace cdx::crm {
namespace {

using nlohmann::json;

// The fields a 422 names, in order.
std::vector<std::string> fields_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::kValidationFailed) << e.detail();
    std::vector<std::string> out;
    for (const auto& f : e.field_errors()) out.push_back(f.field);
    return out;
  }
  ADD_FAILURE() << "expected a validation error";
  return {};
}

bool has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

TEST(CrmRules, CurrencyIsAKnownUpperCaseIso4217Code) {
  for (const char* ok : {"EUR", "USD", "JPY", "GBP", "CHF", "BHD"}) EXPECT_TRUE(valid_currency(ok)) << ok;
  for (const char* bad : {"eur", "EU", "EURO", "XXX", "XTS", "ABC", "", "E1R", "usd"})
    EXPECT_FALSE(valid_currency(bad)) << bad;
}

TEST(CrmRules, DatesAreRealCalendarDays) {
  EXPECT_TRUE(valid_date("2026-12-31"));
  EXPECT_TRUE(valid_date("2024-02-29"));
  EXPECT_TRUE(valid_date("2000-02-29"));
  EXPECT_FALSE(valid_date("1900-02-29"));
  EXPECT_FALSE(valid_date("2026-02-29"));
  EXPECT_FALSE(valid_date("2026-04-31"));
  EXPECT_FALSE(valid_date("2026-13-01"));
  EXPECT_FALSE(valid_date("2026-00-10"));
  EXPECT_FALSE(valid_date("2026-1-01"));
  EXPECT_FALSE(valid_date("2026-01-01T00:00:00Z"));
  EXPECT_FALSE(valid_date("26-01-01"));
  EXPECT_FALSE(valid_date("2026/01/01"));
  EXPECT_FALSE(valid_date(""));
}

TEST(CrmRules, IdsDomainsPhonesAndText) {
  EXPECT_TRUE(valid_id("01930000-0000-7000-8000-000000000001"));
  EXPECT_FALSE(valid_id("01930000-0000-7000-8000-00000000000G"));
  EXPECT_FALSE(valid_id("01930000-0000-7000-8000-00000000000A"));  // upper case is not how ids are written
  EXPECT_FALSE(valid_id("not-an-id"));
  EXPECT_FALSE(valid_id(""));

  EXPECT_FALSE(domain_problem("acme.com"));
  EXPECT_FALSE(domain_problem("sub.acme.co.uk"));
  EXPECT_FALSE(domain_problem("xn--bcher-kva.example"));
  EXPECT_TRUE(domain_problem("https://acme.com"));
  EXPECT_TRUE(domain_problem("acme.com/path"));
  EXPECT_TRUE(domain_problem("acme"));
  EXPECT_TRUE(domain_problem("acme..com"));
  EXPECT_TRUE(domain_problem("-acme.com"));
  EXPECT_TRUE(domain_problem("acme.com."));
  EXPECT_TRUE(domain_problem("acme.123"));
  EXPECT_TRUE(domain_problem("acme.com:8080"));

  EXPECT_FALSE(phone_problem("+49 30 1234567"));
  EXPECT_FALSE(phone_problem("(555) 123-4567 x12"));
  EXPECT_TRUE(phone_problem("call me"));
  EXPECT_TRUE(phone_problem("12"));

  EXPECT_TRUE(clean_text("Ann Müller 日本", false));
  EXPECT_FALSE(clean_text(std::string("a\0b", 3), false));
  EXPECT_FALSE(clean_text("line\nbreak", false));
  EXPECT_TRUE(clean_text("line\nbreak\ttab", true));
  EXPECT_FALSE(clean_text("\xC3", false));          // truncated sequence
  EXPECT_FALSE(clean_text("\xC0\xAF", false));      // overlong
  EXPECT_FALSE(clean_text("\xED\xA0\x80", false));  // surrogate
  EXPECT_FALSE(clean_text("\xFF", false));
}

// The contact and company rules are their kit declarations (resources.cpp), read by the kit's reader.
json read_as(kit::Resource (*declare)(), std::string_view body, kit::Mode mode) {
  kit::Resource r = declare();
  r.seal();
  return kit::read_body(r, body, mode);
}
json parse_contact(std::string_view body, kit::Mode mode) { return read_as(contact_resource, body, mode); }
json parse_company(std::string_view body, kit::Mode mode) { return read_as(company_resource, body, mode); }
json parse_activity(std::string_view body, kit::Mode mode) { return read_as(activity_resource, body, mode); }
json parse_deal(std::string_view body, kit::Mode mode) { return read_as(deal_resource, body, mode); }

TEST(CrmBodies, ContactValidatesEveryFieldAndNamesEachProblem) {
  auto f = fields_of([] {
    parse_contact(R"({"email":"not-an-email","company_id":"nope","lifecycle_stage":"vip","tags":"a",
                      "phone":"call me","custom":[1],"owner_id":42,"first_name":""})",
                  kit::Mode::kCreate);
  });
  for (const char* field :
       {"email", "company_id", "lifecycle_stage", "tags", "phone", "custom", "owner_id", "first_name"})
    EXPECT_TRUE(has(f, field)) << field;
}

TEST(CrmBodies, ContactNeedsANameOrAnEmailAndRefusesUnknownFields) {
  EXPECT_TRUE(has(fields_of([] { parse_contact(R"({"title":"CEO"})", kit::Mode::kCreate); }), "first_name"));
  EXPECT_TRUE(
      has(fields_of([] { parse_contact(R"({"first_name":"A","nickname":"x"})", kit::Mode::kCreate); }),
          "nickname"));
  EXPECT_TRUE(
      has(fields_of([] { parse_contact(R"({"first_name":"A","id":"x"})", kit::Mode::kCreate); }), "id"));
  EXPECT_NO_THROW(parse_contact(R"({"last_name":"Lee"})", kit::Mode::kCreate));
  EXPECT_NO_THROW(parse_contact(R"({"email":"a@b.co"})", kit::Mode::kCreate));
}

TEST(CrmBodies, PatchTellsAbsentFromNull) {
  const json in = parse_contact(R"({"phone":null,"title":"CTO","tags":null})", kit::Mode::kUpdate);
  EXPECT_TRUE(in.at("phone").is_null());  // null: clear
  EXPECT_EQ(in.at("title"), "CTO");
  EXPECT_FALSE(in.contains("first_name"));  // absent: unchanged
  EXPECT_EQ(in.at("tags"), json::array());  // null: back to the default
  // A required field cannot be cleared.
  EXPECT_TRUE(has(fields_of([] { parse_contact(R"({"lifecycle_stage":null})", kit::Mode::kUpdate); }),
                  "lifecycle_stage"));
  EXPECT_TRUE(has(fields_of([] { parse_company(R"({"name":null})", kit::Mode::kUpdate); }), "name"));
  EXPECT_NO_THROW(parse_company(R"({"domain":null})", kit::Mode::kUpdate));
}

TEST(CrmBodies, TagsAreTrimmedAndDeduplicatedIgnoringCase) {
  const json in = parse_contact(R"({"first_name":"A","tags":[" vip ","VIP","beta"]})", kit::Mode::kCreate);
  EXPECT_EQ(in.at("tags"), json({"vip", "beta"}));
  EXPECT_TRUE(
      has(fields_of([] { parse_contact(R"({"first_name":"A","tags":["", "x"]})", kit::Mode::kCreate); }),
          "tags"));
  EXPECT_TRUE(
      has(fields_of([] { parse_contact(R"({"first_name":"A","tags":[1]})", kit::Mode::kCreate); }), "tags"));
}

TEST(CrmBodies, CompanyDomainIsLowerCasedAndAddressIsChecked) {
  const json in =
      parse_company(R"({"name":"Acme","domain":"ACME.com","address":{"city":" Berlin ","country":null}})",
                    kit::Mode::kCreate);
  EXPECT_EQ(in.at("domain"), "acme.com");
  EXPECT_EQ(in.at("address"), json({{"city", "Berlin"}}));
  auto f = fields_of([] {
    parse_company(R"({"name":"A","domain":"http://x","address":{"planet":"Mars","city":5},"size":"huge"})",
                  kit::Mode::kCreate);
  });
  EXPECT_TRUE(has(f, "domain"));
  EXPECT_TRUE(has(f, "address.planet"));
  EXPECT_TRUE(has(f, "address.city"));
  EXPECT_TRUE(has(f, "size"));
  EXPECT_TRUE(has(fields_of([] { parse_company(R"({})", kit::Mode::kCreate); }), "name"));
}

TEST(CrmBodies, DealAmountCurrencyAndDate) {
  const json d =
      parse_deal(R"({"title":"Big","amount":1234,"currency":"EUR","expected_close_date":"2026-06-30"})",
                 kit::Mode::kCreate);
  EXPECT_EQ(d.at("amount"), 1234);
  EXPECT_EQ(d.at("currency"), "EUR");
  // Amounts are integers of minor units, 0 to 10^15.
  for (const char* amount :
       {"12.345", "12.0", "\"12\"", "-1", "1000000000000001", "true", "18446744073709551615", "1e3"})
    EXPECT_TRUE(has(fields_of([&] {
                      parse_deal(std::string(R"({"title":"x","currency":"EUR","amount":)") + amount + "}",
                                 kit::Mode::kCreate);
                    }),
                    "amount"))
        << amount;
  EXPECT_NO_THROW(
      parse_deal(R"({"title":"x","currency":"EUR","amount":1000000000000000})", kit::Mode::kCreate));
  EXPECT_TRUE(
      has(fields_of([] { parse_deal(R"({"title":"x","amount":12,"currency":"eur"})", kit::Mode::kCreate); }),
          "currency"));
  EXPECT_TRUE(has(fields_of([] {
                    parse_deal(R"({"title":"x","expected_close_date":"2026-02-30"})", kit::Mode::kCreate);
                  }),
                  "expected_close_date"));
  EXPECT_TRUE(has(fields_of([] { parse_deal(R"({"title":"x","status":"pending"})", kit::Mode::kCreate); }),
                  "status"));
  EXPECT_TRUE(
      has(fields_of([] { parse_deal(R"({"title":"x","stage_id":null})", kit::Mode::kUpdate); }), "stage_id"));
  EXPECT_TRUE(
      has(fields_of([] { parse_deal(R"({"amount":5,"currency":"USD"})", kit::Mode::kCreate); }), "title"));
}

TEST(CrmBodies, ActivityNeedsATypeAContentAndALink) {
  auto f = fields_of([] { parse_activity(R"({"type":"fax"})", kit::Mode::kCreate); });
  EXPECT_TRUE(has(f, "type"));
  EXPECT_TRUE(has(f, "subject"));
  EXPECT_TRUE(has(f, "contact_id"));
  EXPECT_TRUE(has(fields_of([] {
                    parse_activity(
                        R"({"type":"task","subject":"x","deal_id":"01930000-0000-7000-8000-000000000001",
                                       "due_at":"tomorrow"})",
                        kit::Mode::kCreate);
                  }),
                  "due_at"));
  const json a = parse_activity(R"({"type":"task","subject":"Call","due_at":"2026-05-01T11:30:00+02:00",
                                     "deal_id":"01930000-0000-7000-8000-000000000001"})",
                                kit::Mode::kCreate);
  EXPECT_EQ(a.at("due_at"), "2026-05-01T09:30:00.000000Z");  // normalised to UTC
}

TEST(CrmBodies, MalformedBodiesAre400AndNonObjects422) {
  try {
    parse_contact("{nope", kit::Mode::kCreate);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::kInvalidRequest);
  }
  EXPECT_TRUE(has(fields_of([] { parse_contact("[1,2]", kit::Mode::kCreate); }), "body"));
  EXPECT_TRUE(has(fields_of([] { parse_contact(R"({"first_name":"a\u0000b"})", kit::Mode::kCreate); }),
                  "first_name"));
}

TEST(CrmBodies, DeepNestingIsRefusedBeforeParsing) {
  // Copying or printing JSON recurses per level: a million '[' must be a 422, not a stack overflow.
  const std::string deep = R"({"first_name":"a","custom":{"x":)" + std::string(1'000'000, '[') +
                           std::string(1'000'000, ']') + "}}";
  EXPECT_TRUE(has(fields_of([&] { parse_contact(deep, kit::Mode::kCreate); }), "body"));
  const std::string ok = R"({"first_name":"a","custom":{"x":[[[["[[[[[[[[[[[[[[[[[[[[[[[["]]]]}})";
  EXPECT_NO_THROW(parse_contact(ok, kit::Mode::kCreate));  // brackets inside strings do not count
}

}  // namespace
}  // namespace cdx::crm
