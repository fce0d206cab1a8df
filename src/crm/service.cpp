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

}  // namespace

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
  for (const auto& [name, probability] :
       {std::pair{"Qualification", 10}, {"Proposal", 40}, {"Negotiation", 70}, {"Won", 100}, {"Lost", 0}})
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
              c.errors.push_back(
                  {"is_default", "can only be set to true (make another pipeline the default instead)"});
            if (c.row["is_default"].is_null()) c.row["is_default"] = false;
            if (c.before) return;
            if (c.actor.type != kSystem.type) {  // the tenant's default comes first
              ensure_pipeline(c.tx, c.scope);
              c.row["created_at"] = c.row["updated_at"] = now_text();
            }
            std::set<std::string> names;
            for (size_t i = 0; i < c.row["stages"].size(); ++i)
              if (!names.insert(lowercase(c.row["stages"][i]["name"].get<std::string>())).second)
                c.errors.push_back(
                    {fmt::format("stages[{}].name", i), "is used by another stage of this pipeline"});
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
            if (const int64_t n =
                    store_.count_deals_in_pipeline(c.tx, c.scope, c.row.at("id").get<std::string>()))
              throw Error(
                  Code::kConflict,
                  fmt::format("The pipeline '{}' holds {} deal(s); move or delete them before deleting it.",
                              c.row.at("name").get<std::string>(), n));
          },
      .after_delete =
          [this](kit::Change& c) {
            if (c.row.at("is_default") == false) return;
            // The oldest remaining pipeline becomes the default.
            if (auto next = store_.default_pipeline(c.tx, c.scope))
              kit_->update(c.tx, {c.scope, c.actor, std::nullopt}, *pipelines_, *next,
                           {{"is_default", true}});
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
                if (!c.before && others >= 50)
                  c.errors.push_back({"name", "a pipeline holds at most 50 stages"});
                if (auto taken =
                        store_.stage_named(c.tx, c.scope, pipeline, c.row.at("name").get<std::string>(), id))
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
                for (const std::string& deal : deals)
                  kit_->update(c.tx, caller, *deals_, deal, {{"stage_id", *move_to}});
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

// ---- deals: the rules the kit's declaration cannot say
// -----------------------------------------------------

kit::Hooks Service::deal_hooks() {
  return {
      .validate = [this](kit::Change& c) { place_deal(c); },
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
      c.errors.push_back(
          {"stage_id", c.before ? "is not a stage of the deal's pipeline " +
                                      row["pipeline_id"].get<std::string>() +
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
    const std::string type = status == "won"    ? "crm.deal.won"
                             : status == "lost" ? "crm.deal.lost"
                                                : "crm.deal.reopened";
    json payload = {{"deal", row}};
    if (c.before) payload["from_status"] = from_status;
    c.emit(type, std::move(payload));
  }
}

// ---- events, counts, purge -----------------------------------------------------------------------------

std::vector<db::OutboxEvent> Service::list_events(const db::TenantScope& scope,
                                                  const std::optional<std::string>& type, int limit,
                                                  std::optional<int64_t> before_seq) {
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
