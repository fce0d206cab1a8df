// CRM types and rules: companies, contacts, pipelines and stages, deals with their history, activities;
// the request bodies they are parsed from (every field checked at the edge), list queries and JSON shapes.
//   PipelineInput in = parse_pipeline(ctx.req.body, Mode::kCreate);   // 400 / 422 naming each bad field
//   if (!valid_currency("EUR")) …
#pragma once
#include "common/json_body.hpp"
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/validate.hpp"
#include "kit/resource.hpp"

namespace cdx::crm {

// A PATCH-able field: absent (nullopt), null (holds nullopt: clear it) or a value.
template <class T>
using Field = std::optional<std::optional<T>>;

enum class Mode { kCreate, kUpdate };

// Who made a change (recorded in deal history and events).
using Actor = kit::Actor;

struct Company {
  std::string id;
  std::string name;
  std::optional<std::string> domain, industry, size, owner_id;
  nlohmann::json address = nullptr;  // object or null
  nlohmann::json custom = nlohmann::json::object();
  std::string created_at, updated_at;
};


struct Contact {
  std::string id;
  std::optional<std::string> first_name, last_name, email, phone, title, company_id, owner_id;
  std::string lifecycle_stage = "lead";
  std::vector<std::string> tags;
  nlohmann::json custom = nlohmann::json::object();
  std::string created_at, updated_at;
};


struct Stage {
  std::string id, pipeline_id, name;
  int64_t position = 0;
  int64_t probability = 0;
  std::string created_at, updated_at;
};

struct Pipeline {
  std::string id, name;
  bool is_default = false;
  std::vector<Stage> stages;  // by position
  std::string created_at, updated_at;
};

struct StageInput {
  Field<std::string> name;
  Field<int64_t> probability, position;
};

struct PipelineInput {
  Field<std::string> name;
  Field<bool> is_default;
  std::optional<std::vector<StageInput>> stages;  // create only
};

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

// ---- lists ---------------------------------------------------------------------------------------------

// A page position under one sort: the sort value and id of the last item seen.
struct Cursor {
  std::string value, id;
};

struct ListQuery {
  int limit = 50;
  std::string sort_column = "created_at";  // created_at | updated_at
  bool descending = true;
  std::optional<Cursor> after;
  std::optional<std::string> q;  // a LIKE pattern (already escaped and lower-cased)
};




// "-created_at" → {"created_at", true}; nullopt when not one of the four supported sorts.
std::optional<std::pair<std::string, bool>> parse_sort(std::string_view sort);
std::string encode_list_cursor(const ListQuery& q, const std::string& value, const std::string& id);
// nullopt when the cursor was not made by encode_list_cursor for the same sort.
std::optional<Cursor> decode_list_cursor(const ListQuery& q, std::string_view decoded);

// ---- rules ---------------------------------------------------------------------------------------------

inline constexpr int64_t kMaxAmount = 1'000'000'000'000'000;  // 10^15 minor units
inline constexpr size_t kMaxCustomBytes = 16 * 1024;
inline constexpr size_t kMaxTags = 50;

bool valid_currency(std::string_view code);             // ISO 4217, upper case, a known code
bool valid_id(std::string_view id);                     // the shape of our ids (a UUID, lower-case hex)
std::optional<std::string> domain_problem(std::string_view domain);  // nullopt when fine (after lowering)
std::optional<std::string> phone_problem(std::string_view phone);
std::string normalize_email(std::string_view email);  // lower-cased

// What a contact's ?q= searches, kept in its own column so the list indexes hold it: the lower-cased full
// name and, after a newline (which a search term cannot hold, so no match spans both), the lower-cased email.
std::string contact_search_text(const std::optional<std::string>& first_name,
                                const std::optional<std::string>& last_name, const std::optional<std::string>& email);

const std::vector<std::string>& lifecycle_stages();  // lead qualified customer churned
const std::vector<std::string>& deal_statuses();     // open won lost
const std::vector<std::string>& activity_types();    // note call email meeting task
const std::vector<std::string>& company_sizes();     // "1-10" … "10001+"
bool one_of(const std::vector<std::string>& values, std::string_view v);


// ---- request bodies ------------------------------------------------------------------------------------

PipelineInput parse_pipeline(std::string_view body, Mode mode);
StageInput parse_stage(std::string_view body, Mode mode);


// ---- JSON ----------------------------------------------------------------------------------------------

nlohmann::json to_json(const Company& c);
nlohmann::json to_json(const Contact& c);
nlohmann::json to_json(const Stage& s);
nlohmann::json to_json(const Pipeline& p);
nlohmann::json to_json(const DealChange& c);

}  // namespace cdx::crm
