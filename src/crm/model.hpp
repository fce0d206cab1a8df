// CRM types and rules: companies, contacts, pipelines and stages, deals with their history, activities;
// the request bodies they are parsed from (every field checked at the edge), list queries and JSON shapes.
//   if (!valid_currency("EUR")) …
#pragma once
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/validate.hpp"
#include "kit/resource.hpp"

namespace cdx::crm {

// Who made a change (recorded in deal history and events).
using Actor = kit::Actor;

// One entry of a deal's history: its creation, a stage move, a status change (or both at once).
struct DealChange {
  std::string id, deal_id;
  int64_t seq = 0;
  std::string pipeline_id;
  std::optional<std::string> from_stage_id, to_stage_id, from_status, to_status;
  Actor actor;
  std::string changed_at;
};

// How much CRM data a tenant holds (the tenant overview).
struct Counts {
  int64_t companies = 0, contacts = 0, deals = 0, open_deals = 0, activities = 0;
};

// ---- rules ---------------------------------------------------------------------------------------------

inline constexpr int64_t kMaxAmount = 1'000'000'000'000'000;  // 10^15 minor units
inline constexpr size_t kMaxCustomBytes = 16 * 1024;
inline constexpr size_t kMaxTags = 50;

bool valid_currency(std::string_view code);  // ISO 4217, upper case, a known code
bool valid_id(std::string_view id);          // the shape of our ids (a UUID, lower-case hex)
std::optional<std::string> domain_problem(std::string_view domain);  // nullopt when fine (after lowering)
std::optional<std::string> phone_problem(std::string_view phone);

// What a contact's ?q= searches, kept in its own column so the list indexes hold it: the lower-cased full
// name and, after a newline (which a search term cannot hold, so no match spans both), the lower-cased email.
std::string contact_search_text(const std::optional<std::string>& first_name,
                                const std::optional<std::string>& last_name,
                                const std::optional<std::string>& email);

const std::vector<std::string>& lifecycle_stages();  // lead qualified customer churned
const std::vector<std::string>& deal_statuses();     // open won lost
const std::vector<std::string>& activity_types();    // note call email meeting task
const std::vector<std::string>& company_sizes();     // "1-10" … "10001+"

// ---- JSON ----------------------------------------------------------------------------------------------

nlohmann::json to_json(const DealChange& c);

}  // namespace cdx::crm
