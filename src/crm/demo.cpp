// Sample CRM data for `cdx serve --demo`, made through the same rules as any client's data.
#include <fmt/format.h>

#include "crm/module.hpp"

namespace cdx::crm {

void CrmModule::seed_demo(const db::TenantScope& scope) {
  const kit::Caller caller{scope, {"system", "demo"}, std::nullopt};
  auto make = [&](const kit::Resource& r, const std::string& body) {
    const nlohmann::json patch = kit::read_body(r, body, kit::Mode::kCreate);
    return db_->write(scope, [&](db::Tx& tx) { return kit_.create(tx, caller, r, patch); })["id"]
        .get<std::string>();
  };
  const std::string acme = make(
      companies_,
      R"({"name":"Acme Corporation","domain":"acme.example.com","industry":"Manufacturing","size":"201-500"})");
  const std::string globex = make(
      companies_, R"({"name":"Globex","domain":"globex.example.com","industry":"Software","size":"51-200"})");
  const std::string wile = make(
      contacts_,
      fmt::format(
          R"({{"first_name":"Wile","last_name":"Coyote","email":"wile@acme.example.com",)"
          R"("title":"Head of Procurement","company_id":"{}","lifecycle_stage":"qualified","tags":["vip"]}})",
          acme));
  make(contacts_,
       fmt::format(R"({{"first_name":"Hank","last_name":"Scorpio","email":"hank@globex.example.com",)"
                   R"("title":"CEO","company_id":"{}","lifecycle_stage":"customer"}})",
                   globex));
  make(contacts_,
       R"({"first_name":"Ada","last_name":"Lovelace","email":"ada@example.com","lifecycle_stage":"lead"})");
  const std::string deal =
      make(deals_, fmt::format(R"({{"title":"Acme rocket skates, 500 units","amount":4990000,)"
                               R"("currency":"USD","contact_id":"{}","company_id":"{}"}})",
                               wile, acme));
  make(activities_,
       fmt::format(R"({{"type":"call","subject":"Discovery call","body":"Needs delivery before Q3.",)"
                   R"("contact_id":"{}","deal_id":"{}"}})",
                   wile, deal));
}

}  // namespace cdx::crm
