#include "crm/service.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <set>
#include <thread>

#include "common/clock.hpp"
#include "common/ids.hpp"
#include "common/validate.hpp"
#include "crm/resources.hpp"
#include "kit/kit.hpp"

namespace cdx::crm {

namespace {

using nlohmann::json;

std::string now_text() { return format_rfc3339(Clock::now()); }

const kit::Actor kSystem{"system", "crm"};  // the default pipeline is made by the CRM itself

[[noreturn]] void not_found(std::string_view what, const std::string& id) {
  throw Error(Code::kNotFound, fmt::format("No {} has the id '{}'.", what, id));
}

// Path ids that cannot be ours are answered 404 without asking the database.
void check_id(std::string_view what, const std::string& id) {
  if (!valid_id(id)) not_found(what, id);
}


std::optional<std::string> opt_text(const json& patch, const char* f) {
  auto it = patch.find(f);
  if (it == patch.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// A CSV row under the same rules as a POST body (the kit's reader on the resource's declaration), as the
// object to store; nullopt with the row's errors otherwise.
kit::Resource sealed(kit::Resource r) {
  r.seal();
  return r;
}

std::optional<Company> company_from_row(const json& fields, const std::string& now, std::vector<FieldError>& errors) {
  static const kit::Resource r = sealed(company_resource());
  const json patch = kit::read_fields(r, fields, kit::Mode::kCreate, errors);
  if (!errors.empty()) return std::nullopt;
  Company c;
  c.id = new_uuid_v7();
  c.name = patch.at("name").get<std::string>();
  c.domain = opt_text(patch, "domain");
  c.industry = opt_text(patch, "industry");
  c.size = opt_text(patch, "size");
  c.owner_id = opt_text(patch, "owner_id");
  c.address = patch.value("address", json(nullptr));
  c.custom = patch.value("custom", json::object());
  c.created_at = c.updated_at = now;
  return c;
}

std::optional<Contact> contact_from_row(const json& fields, const std::string& now, std::vector<FieldError>& errors) {
  static const kit::Resource r = sealed(contact_resource());
  const json patch = kit::read_fields(r, fields, kit::Mode::kCreate, errors);
  if (!errors.empty()) return std::nullopt;
  Contact c;
  c.id = new_uuid_v7();
  c.first_name = opt_text(patch, "first_name");
  c.last_name = opt_text(patch, "last_name");
  c.email = opt_text(patch, "email");
  c.phone = opt_text(patch, "phone");
  c.title = opt_text(patch, "title");
  c.company_id = opt_text(patch, "company_id");
  c.owner_id = opt_text(patch, "owner_id");
  c.lifecycle_stage = patch.at("lifecycle_stage").get<std::string>();
  c.tags = patch.at("tags").get<std::vector<std::string>>();
  c.custom = patch.value("custom", json::object());
  c.created_at = c.updated_at = now;
  return c;
}

}  // namespace

nlohmann::json to_json(const ImportReport& r) {
  json errors = json::array();
  for (const auto& e : r.errors) {
    json fields = json::array();
    for (const auto& f : e.errors) fields.push_back({{"field", f.field}, {"message", f.message}});
    errors.push_back({{"row", e.row}, {"errors", std::move(fields)}});
  }
  return {{"rows", r.rows},
          {"created", r.created},
          {"failed", static_cast<int64_t>(r.errors.size())},
          {"ids", r.ids},
          {"errors", std::move(errors)}};
}

void Service::emit(db::Tx& tx, const db::TenantScope& scope, const std::string& type, nlohmann::json payload,
                   const Actor& actor) {
  payload["actor"] = actor.to_json();
  outbox_.append(tx, scope, type, std::move(payload));
}

// ---- companies -----------------------------------------------------------------------------------------

// ---- contacts ------------------------------------------------------------------------------------------

// ---- pipelines and stages --------------------------------------------------------------------------------

std::string Service::ensure_pipeline(db::Tx& tx, const db::TenantScope& scope) {
  if (auto id = store_.default_pipeline(tx, scope)) return *id;
  json stages = json::array();
  for (const auto& [name, probability] : {std::pair{"Qualification", 10}, {"Proposal", 40}, {"Negotiation", 70},
                                          {"Won", 100}, {"Lost", 0}})
    stages.push_back({{"name", name}, {"probability", probability}});
  const kit::Caller system{scope, kSystem, std::nullopt};
  return kit_->create(tx, system, *pipelines_, {{"name", "Sales"}, {"is_default", true}, {"stages", stages}})
      .at("id")
      .get<std::string>();
}

kit::Hooks Service::pipeline_hooks() {
  return {
      .validate =
          [this](kit::Change& c) {
            if (c.given("is_default") && c.row["is_default"] == false)
              c.errors.push_back({"is_default", "can only be set to true (make another pipeline the default instead)"});
            if (c.row["is_default"].is_null()) c.row["is_default"] = false;
            if (c.before) return;
            if (c.actor.type != kSystem.type) {  // the tenant's default comes first
              ensure_pipeline(c.tx, c.scope);
              c.row["created_at"] = c.row["updated_at"] = now_text();
            }
            std::set<std::string> names;
            for (size_t i = 0; i < c.row["stages"].size(); ++i)
              if (!names.insert(lowercase(c.row["stages"][i]["name"].get<std::string>())).second)
                c.errors.push_back({fmt::format("stages[{}].name", i), "is used by another stage of this pipeline"});
          },
      .after_write =
          [this](kit::Change& c) {
            const std::string id = c.row.at("id").get<std::string>();
            if (c.row["is_default"] == true && (!c.before || c.before->at("is_default") == false))
              store_.clear_default_pipeline(c.tx, c.scope, id);
            if (c.before) return;
            const kit::Caller caller{c.scope, c.actor, std::nullopt, id};
            for (const json& stage : c.row["stages"]) kit_->create(c.tx, caller, *stages_, stage);
          },
      .before_delete =
          [this](kit::Change& c) {
            if (const int64_t n = store_.count_deals_in_pipeline(c.tx, c.scope, c.row.at("id").get<std::string>()))
              throw Error(Code::kConflict,
                          fmt::format("The pipeline '{}' holds {} deal(s); move or delete them before deleting it.",
                                      c.row.at("name").get<std::string>(), n));
          },
      .after_delete =
          [this](kit::Change& c) {
            if (c.row.at("is_default") == false) return;
            // The oldest remaining pipeline becomes the default.
            if (auto next = store_.default_pipeline(c.tx, c.scope))
              kit_->update(c.tx, {c.scope, c.actor, std::nullopt}, *pipelines_, *next, {{"is_default", true}});
          },
      .decorate = [this](db::Tx& tx, const db::TenantScope& scope,
                         json& rows) { kit_->embed(tx, scope, *stages_, rows, "stages"); },
      .seed = [this](db::Tx& tx, const db::TenantScope& scope) { ensure_pipeline(tx, scope); }};
}

// Stage names are unique in their pipeline; positions stay 0..n-1, a stage placed at a position moving the
// later ones down; a stage holding deals is deleted only when its deals have somewhere to go.
kit::Hooks Service::stage_hooks() {
  return {.validate =
              [this](kit::Change& c) {
                const std::string pipeline = c.row.at("pipeline_id").get<std::string>();
                const std::string id = c.row.at("id").get<std::string>();
                const int64_t others = store_.count_stages(c.tx, c.scope, pipeline, id);
                if (!c.before && others >= 50) c.errors.push_back({"name", "a pipeline holds at most 50 stages"});
                if (auto taken = store_.stage_named(c.tx, c.scope, pipeline, c.row.at("name").get<std::string>(), id))
                  throw Error(Code::kConflict, "The pipeline already has a stage named '" + *taken + "'.");
                if (c.row["position"].is_null())
                  c.row["position"] = others;
                else
                  c.row["position"] = std::min(c.row["position"].get<int64_t>(), others);
              },
          .after_write =
              [this](kit::Change& c) {
                store_.renumber_stages(c.tx, c.scope, c.row.at("pipeline_id").get<std::string>(),
                                       c.row.at("id").get<std::string>(), c.row.at("position").get<int64_t>(),
                                       c.row.at("updated_at").get<std::string>());
              },
          .before_delete =
              [this](kit::Change& c) {
                const std::string id = c.row.at("id").get<std::string>();
                const auto deals = store_.deals_in_stage(c.tx, c.scope, id);
                if (deals.empty()) return;
                const auto move_to = c.param("move_deals_to");
                if (!move_to)
                  throw Error(Code::kConflict,
                              fmt::format("The stage '{}' holds {} deal(s). Move them first, or delete with "
                                          "?move_deals_to=<stage_id> naming another stage of this pipeline.",
                                          c.row.at("name").get<std::string>(), deals.size()));
                const auto target_pipeline = store_.stage_pipeline(c.tx, c.scope, *move_to);
                if (*move_to == id || !target_pipeline || *target_pipeline != c.row.at("pipeline_id"))
                  throw Error::validation({{"move_deals_to", "must be another stage of the same pipeline"}});
                const kit::Caller caller{c.scope, c.actor, std::nullopt};
                for (const std::string& deal : deals) kit_->update(c.tx, caller, *deals_, deal, {{"stage_id", *move_to}});
              },
          .after_delete =
              [this](kit::Change& c) {
                store_.renumber_stages(c.tx, c.scope, c.row.at("pipeline_id").get<std::string>(), "", -1,
                                       format_rfc3339(Clock::now()));
              }};
}

// ---- deals ---------------------------------------------------------------------------------------------

std::vector<DealChange> Service::deal_history(const db::TenantScope& scope, const std::string& id, int limit,
                                              int64_t after_seq) {
  check_id("deal", id);
  return store_.read(scope, [&](db::Tx& tx) {
    if (!store_.deal_exists(tx, scope, id)) not_found("deal", id);
    return store_.list_history(tx, scope, id, limit, after_seq);
  });
}

// ---- activities ----------------------------------------------------------------------------------------

// ---- deals: the rules the kit's declaration cannot say -----------------------------------------------------

kit::Hooks Service::deal_hooks() {
  return {.validate = [this](kit::Change& c) { place_deal(c); },
          .after_write = [this](kit::Change& c) { record_deal(c); },
          .before_delete =
              [this](kit::Change& c) { store_.delete_history(c.tx, c.scope, c.row.at("id").get<std::string>()); },
          .after_delete = [](kit::Change& c) { delete_orphan_activities(c.tx, c.scope); }};
}

// The deal's pipeline and stage (the default pipeline and a pipeline's first stage when not given; a stage
// must belong to the deal's pipeline), its currency, and closed_at following its status.
void Service::place_deal(kit::Change& c) {
  json& row = c.row;
  const bool pipeline_given = c.given("pipeline_id");
  const bool stage_given = c.given("stage_id");
  std::optional<std::string> pipeline;  // set when the deal needs the pipeline's first stage
  if (pipeline_given && (!c.before || row["pipeline_id"] != c.before->at("pipeline_id"))) {
    pipeline = row["pipeline_id"].get<std::string>();
    if (!kit_->exists(c.tx, c.scope, "crm_db.pipelines", *pipeline)) {
      c.errors.push_back({"pipeline_id", "does not exist in this tenant"});
      pipeline.reset();
    }
  }
  if (stage_given) {
    auto stage_pipeline = store_.stage_pipeline(c.tx, c.scope, row["stage_id"].get<std::string>());
    if (!stage_pipeline) {
      c.errors.push_back({"stage_id", "does not exist in this tenant"});
    } else if (!c.before && !pipeline_given) {
      row["pipeline_id"] = *stage_pipeline;  // the stage names its pipeline
    } else if (*stage_pipeline != row["pipeline_id"]) {
      c.errors.push_back({"stage_id", c.before ? "is not a stage of the deal's pipeline " + row["pipeline_id"].get<std::string>() +
                                                     " (send pipeline_id too to move the deal to another pipeline)"
                                               : "is not a stage of the pipeline " + row["pipeline_id"].get<std::string>()});
    }
  } else if (!c.before && !pipeline_given) {
    pipeline = ensure_pipeline(c.tx, c.scope);
    row["pipeline_id"] = *pipeline;
  }
  if (pipeline && !stage_given) {  // a new deal, or one moved to another pipeline: its first stage
    if (auto first = store_.first_stage(c.tx, c.scope, *pipeline))
      row["stage_id"] = *first;
    else
      c.errors.push_back({"stage_id", "the pipeline has no stages; add one first"});
  }
  if (!row["amount"].is_null() && row["currency"].is_null())
    c.errors.push_back({"currency", "is required with an amount"});
  const bool open = row["status"] == "open";
  if (!c.before || row["status"] != c.before->at("status"))
    row["closed_at"] = open ? json(nullptr) : row["updated_at"];
}

// Every creation, stage move and status change goes into the deal's history, with its event.
void Service::record_deal(kit::Change& c) {
  const json& row = c.row;
  const std::string from_stage = c.before ? c.before->at("stage_id").get<std::string>() : "";
  const std::string from_status = c.before ? c.before->at("status").get<std::string>() : "";
  const bool stage_moved = !c.before || from_stage != row["stage_id"];
  const bool status_moved = !c.before || from_status != row["status"];
  if (!stage_moved && !status_moved) return;
  DealChange h;
  h.id = new_uuid_v7();
  h.deal_id = row["id"];
  h.pipeline_id = row["pipeline_id"];
  if (c.before) h.from_stage_id = from_stage, h.from_status = from_status;
  h.to_stage_id = row["stage_id"].get<std::string>();
  h.to_status = row["status"].get<std::string>();
  h.actor = c.actor;
  h.changed_at = row["updated_at"];
  store_.append_history(c.tx, c.scope, h);
  if (c.before && stage_moved)
    c.emit("crm.deal.stage_changed", {{"deal", row},
                                      {"from_stage_id", from_stage},
                                      {"to_stage_id", row["stage_id"]},
                                      {"from_pipeline_id", c.before->at("pipeline_id")},
                                      {"to_pipeline_id", row["pipeline_id"]}});
  if (status_moved && (c.before || row["status"] != "open")) {
    const std::string status = row["status"];
    const std::string type = status == "won" ? "crm.deal.won" : status == "lost" ? "crm.deal.lost" : "crm.deal.reopened";
    json payload = {{"deal", row}};
    if (c.before) payload["from_status"] = from_status;
    c.emit(type, std::move(payload));
  }
}

// ---- import --------------------------------------------------------------------------------------------

namespace {
// Nothing was stored: the report says so.
[[noreturn]] void fail_import(ImportReport report) {
  report.created = 0;
  report.ids.clear();
  throw ImportFailed(std::move(report));
}

// One data row on its way in: its problems so far, and the object once the model's rules passed.
template <class T>
struct ImportCandidate {
  int64_t row = 0;
  std::vector<FieldError> errors;
  std::optional<T> object;
  std::string key;      // what must be unique in the tenant: the normalized email, the domain
  std::string payload;  // its *.created event
};

// Runs fn(i) for every i < n; a large import's rows are split over two threads (the model's rules and
// the event payloads are most of an import's CPU time, and need nothing shared).
template <class Fn>
void for_each_row(size_t n, Fn fn) {
  const size_t half = n >= 4096 && std::thread::hardware_concurrency() > 1 ? n / 2 : n;
  std::exception_ptr error;
  std::thread other;
  if (half < n)
    other = std::thread([&] {
      try {
        for (size_t i = half; i < n; ++i) fn(i);
      } catch (...) {
        error = std::current_exception();
      }
    });
  try {
    for (size_t i = 0; i < half; ++i) fn(i);
  } catch (...) {
    if (other.joinable()) other.join();
    throw;
  }
  if (other.joinable()) other.join();
  if (error) std::rethrow_exception(error);
}

// The *.created event's payload ({"actor", "<kind>"}), as emit() and db::Outbox::append would write it,
// without building a second JSON tree per row.
std::string created_payload(const std::string& actor_text, const char* kind, const json& object) {
  const std::string body = object.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string out;
  out.reserve(actor_text.size() + std::strlen(kind) + body.size() + 16);  // exact: 100,000 of these are held
  out += "{\"actor\":";
  out += actor_text;
  out += ",\"";
  out += kind;
  out += "\":";
  out += body;
  out += '}';
  return out;
}

// An import does what needs no database before its transaction (the model's rules, the event payloads),
// so the SQLite writer or the PostgreSQL connection is held only for the lookups against the stored data
// (links, unique emails or domains: a statement per thousand values) and the multi-row inserts. An
// all-or-nothing import that already has bad rows fails without taking the writer: its report is
// completed in a read transaction. check(tx, report) answers the indexes of the rows to store and fills
// the report's errors; insert(tx, indexes) stores them and their events.
template <class T, class Check, class Insert>
ImportReport run_import(Store& store, const db::TenantScope& scope, std::vector<ImportCandidate<T>>& candidates,
                        bool partial, Check check, Insert insert) {
  ImportReport report;
  report.rows = static_cast<int64_t>(candidates.size());
  const bool bad_rows =
      std::any_of(candidates.begin(), candidates.end(), [](const auto& c) { return !c.errors.empty(); });
  if (bad_rows && !partial) {
    store.read(scope, [&](db::Tx& tx) { check(tx, report); });
    fail_import(std::move(report));
  }
  return store.write(scope, [&](db::Tx& tx) {
    ImportReport r = report;
    const std::vector<size_t> good = check(tx, r);
    if (!r.errors.empty() && !partial) fail_import(std::move(r));
    r.ids.reserve(good.size());
    for (size_t i : good) r.ids.push_back(candidates[i].object->id);
    r.created = static_cast<int64_t>(good.size());
    insert(tx, good);
    return r;
  });
}

// The objects and payloads of the rows to store, moved out of their candidates.
template <class T>
std::pair<std::vector<T>, std::vector<std::string>> take(std::vector<ImportCandidate<T>>& candidates,
                                                         const std::vector<size_t>& good) {
  std::pair<std::vector<T>, std::vector<std::string>> out;
  out.first.reserve(good.size());
  out.second.reserve(good.size());
  for (size_t i : good) {
    out.first.push_back(std::move(*candidates[i].object));
    out.second.push_back(std::move(candidates[i].payload));
  }
  return out;
}

}  // namespace

ImportReport Service::import_contacts(const db::TenantScope& scope, const std::vector<ImportRow>& rows,
                                      bool partial, const Actor& actor) {
  const std::string now = now_text();
  const std::string by = actor.to_json().dump();
  std::vector<ImportCandidate<Contact>> candidates(rows.size());
  for_each_row(rows.size(), [&](size_t i) {
    auto& cand = candidates[i];
    cand.row = rows[i].row;
    cand.errors = rows[i].errors;
    if (!cand.errors.empty()) return;
    auto made = contact_from_row(rows[i].fields, now, cand.errors);
    if (!made) return;
    Contact c = std::move(*made);
    if (c.email) cand.key = normalize_email(*c.email);
    cand.payload = created_payload(by, "contact", to_json(c));
    cand.object = std::move(c);
  });
  std::vector<std::string> company_ids, emails;
  for (const auto& cand : candidates) {
    if (!cand.object) continue;
    if (cand.object->company_id) company_ids.push_back(*cand.object->company_id);
    if (cand.object->email) emails.push_back(cand.key);
  }
  auto check = [&](db::Tx& tx, ImportReport& report) {
    const auto companies = store_.existing_companies(tx, scope, company_ids);
    auto taken = store_.taken_emails(tx, scope, emails);
    std::vector<size_t> good;
    for (size_t i = 0; i < candidates.size(); ++i) {
      const auto& cand = candidates[i];
      std::vector<FieldError> errors = cand.errors;
      if (cand.object) {
        const Contact& c = *cand.object;
        if (c.company_id && !companies.contains(*c.company_id))
          errors.push_back({"company_id", "does not exist in this tenant"});
        else if (c.email && !taken.insert(cand.key).second)  // stored, or an earlier row of this file
          errors.push_back({"email", "another contact of this tenant has this email"});
        if (errors.empty()) {
          good.push_back(i);
          continue;
        }
      }
      report.errors.push_back({cand.row, std::move(errors)});
    }
    return good;
  };
  auto insert = [&](db::Tx& tx, const std::vector<size_t>& good) {
    const auto [contacts, payloads] = take(candidates, good);
    store_.import_contacts(tx, scope, contacts, {outbox_.schema(), "crm.contact.created", payloads});
  };
  return run_import(store_, scope, candidates, partial, check, insert);
}

ImportReport Service::import_companies(const db::TenantScope& scope, const std::vector<ImportRow>& rows,
                                       bool partial, const Actor& actor) {
  const std::string now = now_text();
  const std::string by = actor.to_json().dump();
  std::vector<ImportCandidate<Company>> candidates(rows.size());
  for_each_row(rows.size(), [&](size_t i) {
    auto& cand = candidates[i];
    cand.row = rows[i].row;
    cand.errors = rows[i].errors;
    if (!cand.errors.empty()) return;
    auto made = company_from_row(rows[i].fields, now, cand.errors);
    if (!made) return;
    Company c = std::move(*made);
    if (c.domain) cand.key = *c.domain;  // lower-cased by the model
    cand.payload = created_payload(by, "company", to_json(c));
    cand.object = std::move(c);
  });
  std::vector<std::string> domains;
  for (const auto& cand : candidates)
    if (cand.object && cand.object->domain) domains.push_back(cand.key);
  auto check = [&](db::Tx& tx, ImportReport& report) {
    auto taken = store_.taken_domains(tx, scope, domains);
    std::vector<size_t> good;
    for (size_t i = 0; i < candidates.size(); ++i) {
      const auto& cand = candidates[i];
      std::vector<FieldError> errors = cand.errors;
      if (cand.object) {
        if (!cand.object->domain || taken.insert(cand.key).second) {  // not stored, nor in an earlier row
          good.push_back(i);
          continue;
        }
        errors.push_back({"domain", "another company of this tenant has this domain"});
      }
      report.errors.push_back({cand.row, std::move(errors)});
    }
    return good;
  };
  auto insert = [&](db::Tx& tx, const std::vector<size_t>& good) {
    const auto [companies, payloads] = take(candidates, good);
    store_.import_companies(tx, scope, companies, {outbox_.schema(), "crm.company.created", payloads});
  };
  return run_import(store_, scope, candidates, partial, check, insert);
}

// ---- events, counts, purge -----------------------------------------------------------------------------

std::vector<db::OutboxEvent> Service::list_events(const db::TenantScope& scope, const std::optional<std::string>& type,
                                                  int limit, std::optional<int64_t> before_seq) {
  return store_.read(scope, [&](db::Tx& tx) { return outbox_.list(tx, scope, type, limit, before_seq); });
}

Counts Service::counts(const db::TenantScope& scope) {
  return store_.read(scope, [&](db::Tx& tx) { return store_.counts(tx, scope); });
}

void Service::purge_tenant(const db::TenantScope& scope) {
  store_.write(scope, [&](db::Tx& tx) {
    store_.purge_tenant(tx, scope);
    outbox_.purge_tenant(tx, scope);
  });
}

}  // namespace cdx::crm
