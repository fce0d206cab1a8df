// Sample CRM data for `cdx serve --demo`, made through the service like any client's data.
#include <fmt/format.h>

#include "crm/module.hpp"

namespace cdx::crm {

void CrmModule::seed_demo(const db::TenantScope& scope) {
  const Actor actor{"system", "demo"};
  const Company acme = service_.create_company(
      scope, parse_company(R"({"name":"Acme Corporation","domain":"acme.example.com","industry":"Manufacturing","size":"201-500"})",
                           Mode::kCreate),
      actor);
  const Company globex = service_.create_company(
      scope, parse_company(R"({"name":"Globex","domain":"globex.example.com","industry":"Software","size":"51-200"})",
                           Mode::kCreate),
      actor);
  const Contact wile = service_.create_contact(
      scope,
      parse_contact(fmt::format(R"({{"first_name":"Wile","last_name":"Coyote","email":"wile@acme.example.com",)"
                                R"("title":"Head of Procurement","company_id":"{}","lifecycle_stage":"qualified","tags":["vip"]}})",
                                acme.id),
                    Mode::kCreate),
      actor);
  service_.create_contact(
      scope,
      parse_contact(fmt::format(R"({{"first_name":"Hank","last_name":"Scorpio","email":"hank@globex.example.com",)"
                                R"("title":"CEO","company_id":"{}","lifecycle_stage":"customer"}})",
                                globex.id),
                    Mode::kCreate),
      actor);
  service_.create_contact(
      scope, parse_contact(R"({"first_name":"Ada","last_name":"Lovelace","email":"ada@example.com","lifecycle_stage":"lead"})",
                           Mode::kCreate),
      actor);
  const Deal deal = service_.create_deal(
      scope,
      parse_deal(fmt::format(R"({{"title":"Acme rocket skates, 500 units","amount":4990000,"currency":"USD",)"
                             R"("contact_id":"{}","company_id":"{}"}})",
                             wile.id, acme.id),
                 Mode::kCreate),
      actor);
  service_.create_activity(
      scope,
      parse_activity(fmt::format(R"({{"type":"call","subject":"Discovery call","body":"Needs delivery before Q3.",)"
                                 R"("contact_id":"{}","deal_id":"{}"}})",
                                 wile.id, deal.id),
                     Mode::kCreate),
      actor);
}

}  // namespace cdx::crm
