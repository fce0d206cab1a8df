#include "crm/service.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <exception>
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

[[noreturn]] void not_found(std::string_view what, const std::string& id) {
  throw Error(Code::kNotFound, fmt::format("No {} has the id '{}'.", what, id));
}

// Path ids that cannot be ours are answered 404 without asking the database.
void check_id(std::string_view what, const std::string& id) {
  if (!valid_id(id)) not_found(what, id);
}

template <class T>
void apply(std::optional<T>& target, const Field<T>& f) {
  if (f) target = *f;
}
template <class T>
void apply_required(T& target, const Field<T>& f) {
  if (f && *f) target = **f;
}
void apply_object(json& target, const Field<json>& f) {
  if (f) target = *f ? **f : json::object();
}

// The fields whose rendering differs between two versions of an object (for *.updated events).
json changed_fields(const json& before, const json& after) {
  json out = json::array();
  for (const auto& [k, v] : after.items()) {
    if (k == "updated_at") continue;
    if (!before.contains(k) || before.at(k) != v) out.push_back(k);
  }
  return out;
}

json actor_json(const Actor& a) { return {{"type", a.type}, {"id", a.id}}; }

const std::string& kDefaultPipelineName() {
  static const std::string k = "Sales";
  return k;
}

// Renumbers positions 0..n-1 in the given order; answers the stages whose position changed.
std::vector<Stage*> renumber(std::vector<Stage>& stages) {
  std::vector<Stage*> changed;
  for (size_t i = 0; i < stages.size(); ++i) {
    if (stages[i].position != static_cast<int64_t>(i)) {
      stages[i].position = static_cast<int64_t>(i);
      changed.push_back(&stages[i]);
    }
  }
  return changed;
}

bool same_name(const std::string& a, const std::string& b) { return lowercase(a) == lowercase(b); }

std::optional<std::string> opt_text(const json& patch, const char* f) {
  auto it = patch.find(f);
  if (it == patch.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// A CSV row under the same rules as a POST body (the kit's reader on the resource's declaration), as the
// object to store; nullopt with the row's errors otherwise.
std::optional<Company> company_from_row(const json& fields, const std::string& now, std::vector<FieldError>& errors) {
  static const kit::Resource r = [] {
    kit::Resource d = company_resource();
    d.seal();
    return d;
  }();
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
  static const kit::Resource r = [] {
    kit::Resource d = contact_resource();
    d.seal();
    return d;
  }();
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
  payload["actor"] = actor_json(actor);
  outbox_.append(tx, scope, type, std::move(payload));
}

// ---- companies -----------------------------------------------------------------------------------------

// ---- contacts ------------------------------------------------------------------------------------------

// ---- pipelines -----------------------------------------------------------------------------------------

Pipeline Service::ensure_pipeline(db::Tx& tx, const db::TenantScope& scope) {
  if (auto p = store_.default_pipeline(tx, scope)) return *p;
  Pipeline p;
  p.id = new_uuid_v7();
  p.name = kDefaultPipelineName();
  p.is_default = true;
  p.created_at = p.updated_at = now_text();
  const std::pair<const char*, int64_t> kStages[] = {
      {"Qualification", 10}, {"Proposal", 40}, {"Negotiation", 70}, {"Won", 100}, {"Lost", 0}};
  int64_t pos = 0;
  for (const auto& [name, probability] : kStages) {
    Stage s;
    s.id = new_uuid_v7();
    s.pipeline_id = p.id;
    s.name = name;
    s.position = pos++;
    s.probability = probability;
    s.created_at = s.updated_at = p.created_at;
    p.stages.push_back(std::move(s));
  }
  store_.insert_pipeline(tx, scope, p);
  outbox_.append(tx, scope, "crm.pipeline.created",
                 {{"pipeline", to_json(p)}, {"actor", {{"type", "system"}, {"id", "crm"}}}});
  return p;
}

std::vector<Pipeline> Service::list_pipelines(const db::TenantScope& scope, const ListQuery& q) {
  auto out = store_.read(scope, [&](db::Tx& tx) { return store_.list_pipelines(tx, scope, q); });
  if (out.empty() && !q.after && !q.q) {
    // First use: the tenant gets its default pipeline.
    store_.write(scope, [&](db::Tx& tx) { ensure_pipeline(tx, scope); });
    out = store_.read(scope, [&](db::Tx& tx) { return store_.list_pipelines(tx, scope, q); });
  }
  return out;
}

Pipeline Service::get_pipeline(const db::TenantScope& scope, const std::string& id) {
  check_id("pipeline", id);
  auto p = store_.read(scope, [&](db::Tx& tx) { return store_.find_pipeline(tx, scope, id); });
  if (!p) not_found("pipeline", id);
  return *p;
}

Pipeline Service::create_pipeline(const db::TenantScope& scope, const PipelineInput& in, const Actor& actor) {
  return store_.write(scope, [&](db::Tx& tx) {
    ensure_pipeline(tx, scope);
    Pipeline p;
    p.id = new_uuid_v7();
    apply_required(p.name, in.name);
    p.is_default = in.is_default && *in.is_default && **in.is_default;
    p.created_at = p.updated_at = now_text();
    if (in.stages) {
      int64_t pos = 0;
      for (const auto& si : *in.stages) {
        Stage s;
        s.id = new_uuid_v7();
        s.pipeline_id = p.id;
        apply_required(s.name, si.name);
        apply_required(s.probability, si.probability);
        s.position = pos++;
        s.created_at = s.updated_at = p.created_at;
        p.stages.push_back(std::move(s));
      }
    }
    if (p.is_default) store_.clear_default_pipeline(tx, scope);
    store_.insert_pipeline(tx, scope, p);
    emit(tx, scope, "crm.pipeline.created", {{"pipeline", to_json(p)}}, actor);
    return p;
  });
}

Pipeline Service::update_pipeline(const db::TenantScope& scope, const std::string& id, const PipelineInput& in,
                                  const Actor& actor) {
  check_id("pipeline", id);
  return store_.write(scope, [&](db::Tx& tx) {
    auto before = store_.find_pipeline(tx, scope, id);
    if (!before) not_found("pipeline", id);
    Pipeline p = *before;
    apply_required(p.name, in.name);
    if (in.is_default && *in.is_default && **in.is_default) p.is_default = true;
    const json changed = changed_fields(to_json(*before), to_json(p));
    if (changed.empty()) return p;
    p.updated_at = now_text();
    if (p.is_default && !before->is_default) store_.clear_default_pipeline(tx, scope);
    store_.update_pipeline(tx, scope, p);
    emit(tx, scope, "crm.pipeline.updated", {{"pipeline", to_json(p)}, {"changed", changed}}, actor);
    return p;
  });
}

void Service::delete_pipeline(const db::TenantScope& scope, const std::string& id, const Actor& actor) {
  check_id("pipeline", id);
  store_.write(scope, [&](db::Tx& tx) {
    auto p = store_.find_pipeline(tx, scope, id);
    if (!p) not_found("pipeline", id);
    if (const int64_t n = store_.count_deals_in_pipeline(tx, scope, id); n > 0)
      throw Error(Code::kConflict, fmt::format("The pipeline '{}' holds {} deal(s); move or delete them before "
                                               "deleting it.",
                                               p->name, n));
    store_.delete_pipeline(tx, scope, id);
    if (p->is_default) {
      // Another pipeline (the oldest) becomes the default.
      if (auto next = store_.default_pipeline(tx, scope)) {
        next->is_default = true;
        next->updated_at = now_text();
        store_.update_pipeline(tx, scope, *next);
      }
    }
    emit(tx, scope, "crm.pipeline.deleted", {{"id", id}}, actor);
  });
}

std::vector<Stage> Service::list_stages(const db::TenantScope& scope, const std::string& pipeline_id) {
  return get_pipeline(scope, pipeline_id).stages;
}

Stage Service::create_stage(const db::TenantScope& scope, const std::string& pipeline_id, const StageInput& in,
                            const Actor& actor) {
  check_id("pipeline", pipeline_id);
  return store_.write(scope, [&](db::Tx& tx) {
    auto p = store_.find_pipeline(tx, scope, pipeline_id);
    if (!p) not_found("pipeline", pipeline_id);
    if (p->stages.size() >= 50) throw Error::validation({{"name", "a pipeline holds at most 50 stages"}});
    Stage s;
    s.id = new_uuid_v7();
    s.pipeline_id = p->id;
    apply_required(s.name, in.name);
    apply_required(s.probability, in.probability);
    for (const auto& other : p->stages)
      if (same_name(other.name, s.name))
        throw Error(Code::kConflict, "The pipeline already has a stage named '" + other.name + "'.");
    s.created_at = s.updated_at = now_text();
    const auto size = static_cast<int64_t>(p->stages.size());
    const int64_t at = (in.position && *in.position) ? std::clamp<int64_t>(**in.position, 0, size) : size;
    s.position = at;
    std::vector<Stage> order = p->stages;
    order.insert(order.begin() + at, s);
    renumber(order);
    for (auto& o : order) {
      if (o.id == s.id) {
        store_.insert_stage(tx, scope, o);
      } else {
        auto old = std::find_if(p->stages.begin(), p->stages.end(), [&](const Stage& x) { return x.id == o.id; });
        if (old->position != o.position) {
          o.updated_at = s.created_at;
          store_.update_stage(tx, scope, o);
        }
      }
    }
    p->stages = order;
    emit(tx, scope, "crm.pipeline.updated", {{"pipeline", to_json(*p)}, {"changed", {"stages"}}}, actor);
    return s;
  });
}

Stage Service::update_stage(const db::TenantScope& scope, const std::string& pipeline_id, const std::string& stage_id,
                            const StageInput& in, const Actor& actor) {
  check_id("pipeline", pipeline_id);
  check_id("stage", stage_id);
  return store_.write(scope, [&](db::Tx& tx) {
    auto p = store_.find_pipeline(tx, scope, pipeline_id);
    if (!p) not_found("pipeline", pipeline_id);
    auto it = std::find_if(p->stages.begin(), p->stages.end(), [&](const Stage& s) { return s.id == stage_id; });
    if (it == p->stages.end()) not_found("stage of this pipeline", stage_id);
    const Stage before = *it;
    Stage s = before;
    apply_required(s.name, in.name);
    apply_required(s.probability, in.probability);
    for (const auto& other : p->stages)
      if (other.id != s.id && same_name(other.name, s.name))
        throw Error(Code::kConflict, "The pipeline already has a stage named '" + other.name + "'.");
    std::vector<Stage> order = p->stages;
    order.erase(order.begin() + (it - p->stages.begin()));
    const auto last = static_cast<int64_t>(order.size());
    const int64_t at = (in.position && *in.position) ? std::clamp<int64_t>(**in.position, 0, last) : before.position;
    order.insert(order.begin() + std::min(at, last), s);
    renumber(order);
    bool changed = false;
    const std::string now = now_text();
    for (auto& o : order) {
      auto old = std::find_if(p->stages.begin(), p->stages.end(), [&](const Stage& x) { return x.id == o.id; });
      if (old->position != o.position || old->name != o.name || old->probability != o.probability) {
        o.updated_at = now;
        store_.update_stage(tx, scope, o);
        changed = true;
      }
      if (o.id == s.id) s = o;
    }
    if (changed) {
      p->stages = order;
      emit(tx, scope, "crm.pipeline.updated", {{"pipeline", to_json(*p)}, {"changed", {"stages"}}}, actor);
    }
    return s;
  });
}

void Service::delete_stage(const db::TenantScope& scope, const std::string& pipeline_id, const std::string& stage_id,
                           const std::optional<std::string>& move_to, const Actor& actor) {
  check_id("pipeline", pipeline_id);
  check_id("stage", stage_id);
  store_.write(scope, [&](db::Tx& tx) {
    auto p = store_.find_pipeline(tx, scope, pipeline_id);
    if (!p) not_found("pipeline", pipeline_id);
    auto it = std::find_if(p->stages.begin(), p->stages.end(), [&](const Stage& s) { return s.id == stage_id; });
    if (it == p->stages.end()) not_found("stage of this pipeline", stage_id);
    const Stage doomed = *it;
    const auto deals = store_.deals_in_stage(tx, scope, stage_id);
    const std::string now = now_text();
    if (!deals.empty()) {
      if (!move_to)
        throw Error(Code::kConflict,
                    fmt::format("The stage '{}' holds {} deal(s). Move them first, or delete with "
                                "?move_deals_to=<stage_id> naming another stage of this pipeline.",
                                doomed.name, deals.size()));
      auto target = std::find_if(p->stages.begin(), p->stages.end(), [&](const Stage& s) { return s.id == *move_to; });
      if (target == p->stages.end() || target->id == stage_id)
        throw Error::validation({{"move_deals_to", "must be another stage of the same pipeline"}});
      for (const Deal& d : deals) {
        Deal moved = d;
        moved.stage_id = target->id;
        move_deal(tx, scope, d, std::move(moved), actor, now);
      }
    }
    store_.delete_stage(tx, scope, stage_id);
    std::vector<Stage> order = p->stages;
    order.erase(order.begin() + (it - p->stages.begin()));
    for (Stage* s : renumber(order)) {
      s->updated_at = now;
      store_.update_stage(tx, scope, *s);
    }
    p->stages = order;
    emit(tx, scope, "crm.pipeline.updated",
         {{"pipeline", to_json(*p)}, {"changed", {"stages"}}, {"deleted_stage_id", stage_id}}, actor);
  });
}

// ---- deals ---------------------------------------------------------------------------------------------

// Stores a deal change and records what it means: history for stage or status moves, and the events.
void Service::move_deal(db::Tx& tx, const db::TenantScope& scope, const Deal& before, Deal d, const Actor& actor,
                        const std::string& now) {
  const json changed = changed_fields(to_json(before), to_json(d));
  if (changed.empty()) return;
  if (d.status != before.status) d.closed_at = d.status == "open" ? std::nullopt : std::optional<std::string>(now);
  d.updated_at = now;
  store_.update_deal(tx, scope, d);
  const json deal = to_json(d);
  emit(tx, scope, "crm.deal.updated", {{"deal", deal}, {"changed", changed}}, actor);
  const bool stage_moved = d.stage_id != before.stage_id;
  const bool status_moved = d.status != before.status;
  if (stage_moved || status_moved) {
    DealChange h;
    h.id = new_uuid_v7();
    h.deal_id = d.id;
    h.pipeline_id = d.pipeline_id;
    h.from_stage_id = before.stage_id;
    h.to_stage_id = d.stage_id;
    h.from_status = before.status;
    h.to_status = d.status;
    h.actor = actor;
    h.changed_at = now;
    store_.append_history(tx, scope, h);
  }
  if (stage_moved)
    emit(tx, scope, "crm.deal.stage_changed",
         {{"deal", deal},
          {"from_stage_id", before.stage_id},
          {"to_stage_id", d.stage_id},
          {"from_pipeline_id", before.pipeline_id},
          {"to_pipeline_id", d.pipeline_id}},
         actor);
  if (status_moved) {
    const std::string type = d.status == "won" ? "crm.deal.won" : d.status == "lost" ? "crm.deal.lost" : "crm.deal.reopened";
    emit(tx, scope, type, {{"deal", deal}, {"from_status", before.status}}, actor);
  }
}

Deal Service::create_deal(const db::TenantScope& scope, const DealInput& in, const Actor& actor) {
  return store_.write(scope, [&](db::Tx& tx) {
    Deal d;
    d.id = new_uuid_v7();
    apply_required(d.title, in.title);
    apply(d.amount, in.amount);
    apply(d.currency, in.currency);
    apply(d.contact_id, in.contact_id);
    apply(d.company_id, in.company_id);
    apply(d.expected_close_date, in.expected_close_date);
    apply(d.owner_id, in.owner_id);
    apply_required(d.status, in.status);
    apply_object(d.custom, in.custom);
    std::vector<FieldError> errors;
    std::optional<Pipeline> pipeline;
    if (in.pipeline_id && *in.pipeline_id) {
      pipeline = store_.find_pipeline(tx, scope, **in.pipeline_id);
      if (!pipeline) errors.push_back({"pipeline_id", "does not exist in this tenant"});
    }
    std::optional<Stage> stage;
    if (in.stage_id && *in.stage_id) {
      stage = store_.find_stage(tx, scope, **in.stage_id);
      if (!stage) {
        errors.push_back({"stage_id", "does not exist in this tenant"});
      } else if (pipeline && stage->pipeline_id != pipeline->id) {
        errors.push_back({"stage_id", "is not a stage of the pipeline " + pipeline->id});
        stage.reset();
      } else if (!pipeline && !(in.pipeline_id && *in.pipeline_id)) {
        pipeline = store_.find_pipeline(tx, scope, stage->pipeline_id);  // the stage names its pipeline
      }
    }
    if (!pipeline && !(in.pipeline_id && *in.pipeline_id) && !(in.stage_id && *in.stage_id))
      pipeline = ensure_pipeline(tx, scope);
    if (pipeline && !stage && !(in.stage_id && *in.stage_id)) {
      if (pipeline->stages.empty())
        errors.push_back({"stage_id", "the pipeline has no stages; add one first"});
      else
        stage = pipeline->stages.front();
    }
    if (d.contact_id && !store_.contact_exists(tx, scope, *d.contact_id))
      errors.push_back({"contact_id", "does not exist in this tenant"});
    if (d.company_id && !store_.company_exists(tx, scope, *d.company_id))
      errors.push_back({"company_id", "does not exist in this tenant"});
    if (!errors.empty()) throw Error::validation(std::move(errors));
    d.pipeline_id = pipeline->id;
    d.stage_id = stage->id;
    d.created_at = d.updated_at = now_text();
    if (d.status != "open") d.closed_at = d.created_at;
    store_.insert_deal(tx, scope, d);
    DealChange h;
    h.id = new_uuid_v7();
    h.deal_id = d.id;
    h.pipeline_id = d.pipeline_id;
    h.to_stage_id = d.stage_id;
    h.to_status = d.status;
    h.actor = actor;
    h.changed_at = d.created_at;
    store_.append_history(tx, scope, h);
    const json deal = to_json(d);
    emit(tx, scope, "crm.deal.created", {{"deal", deal}}, actor);
    if (d.status == "won") emit(tx, scope, "crm.deal.won", {{"deal", deal}}, actor);
    if (d.status == "lost") emit(tx, scope, "crm.deal.lost", {{"deal", deal}}, actor);
    return d;
  });
}

Deal Service::get_deal(const db::TenantScope& scope, const std::string& id) {
  check_id("deal", id);
  auto d = store_.read(scope, [&](db::Tx& tx) { return store_.find_deal(tx, scope, id); });
  if (!d) not_found("deal", id);
  return *d;
}

std::vector<Deal> Service::list_deals(const db::TenantScope& scope, const DealFilter& f) {
  return store_.read(scope, [&](db::Tx& tx) { return store_.list_deals(tx, scope, f); });
}

Deal Service::update_deal(const db::TenantScope& scope, const std::string& id, const DealInput& in,
                          const Actor& actor) {
  check_id("deal", id);
  return store_.write(scope, [&](db::Tx& tx) {
    auto before = store_.find_deal(tx, scope, id);
    if (!before) not_found("deal", id);
    Deal d = *before;
    apply_required(d.title, in.title);
    apply(d.amount, in.amount);
    apply(d.currency, in.currency);
    apply(d.contact_id, in.contact_id);
    apply(d.company_id, in.company_id);
    apply(d.expected_close_date, in.expected_close_date);
    apply(d.owner_id, in.owner_id);
    apply_required(d.status, in.status);
    apply_object(d.custom, in.custom);
    std::vector<FieldError> errors;
    std::optional<Pipeline> pipeline;
    if (in.pipeline_id && *in.pipeline_id && **in.pipeline_id != d.pipeline_id) {
      pipeline = store_.find_pipeline(tx, scope, **in.pipeline_id);
      if (!pipeline)
        errors.push_back({"pipeline_id", "does not exist in this tenant"});
      else
        d.pipeline_id = pipeline->id;
    }
    if (in.stage_id && *in.stage_id) {
      auto stage = store_.find_stage(tx, scope, **in.stage_id);
      if (!stage)
        errors.push_back({"stage_id", "does not exist in this tenant"});
      else if (stage->pipeline_id != d.pipeline_id)
        errors.push_back({"stage_id", "is not a stage of the deal's pipeline " + d.pipeline_id +
                                          " (send pipeline_id too to move the deal to another pipeline)"});
      else
        d.stage_id = stage->id;
    } else if (pipeline) {
      // Moved to another pipeline without a stage: its first stage.
      if (pipeline->stages.empty())
        errors.push_back({"stage_id", "the pipeline has no stages; add one first"});
      else
        d.stage_id = pipeline->stages.front().id;
    }
    if (d.contact_id && d.contact_id != before->contact_id && !store_.contact_exists(tx, scope, *d.contact_id))
      errors.push_back({"contact_id", "does not exist in this tenant"});
    if (d.company_id && d.company_id != before->company_id && !store_.company_exists(tx, scope, *d.company_id))
      errors.push_back({"company_id", "does not exist in this tenant"});
    if (d.amount && !d.currency) errors.push_back({"currency", "is required with an amount"});
    if (!errors.empty()) throw Error::validation(std::move(errors));
    const std::string now = now_text();
    move_deal(tx, scope, *before, d, actor, now);
    return store_.find_deal(tx, scope, id).value_or(d);
  });
}

void Service::delete_deal(const db::TenantScope& scope, const std::string& id, const Actor& actor) {
  check_id("deal", id);
  store_.write(scope, [&](db::Tx& tx) {
    if (!store_.deal_exists(tx, scope, id)) not_found("deal", id);
    store_.delete_deal(tx, scope, id, now_text());
    emit(tx, scope, "crm.deal.deleted", {{"id", id}}, actor);
  });
}

std::vector<DealChange> Service::deal_history(const db::TenantScope& scope, const std::string& id, int limit,
                                              int64_t after_seq) {
  check_id("deal", id);
  return store_.read(scope, [&](db::Tx& tx) {
    if (!store_.deal_exists(tx, scope, id)) not_found("deal", id);
    return store_.list_history(tx, scope, id, limit, after_seq);
  });
}

// ---- activities ----------------------------------------------------------------------------------------

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
  const std::string by = actor_json(actor).dump();
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
  const std::string by = actor_json(actor).dump();
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
