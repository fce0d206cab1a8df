// The CRM's components/schemas for /openapi.json: its kit resources' from their declarations, the rest here.
#include "crm/module.hpp"

#include "crm/model.hpp"
#include "crm/resources.hpp"
#include "kit/kit.hpp"

namespace cdx::crm {

namespace {

using nlohmann::json;

json str() { return {{"type", "string"}}; }
json nstr_fmt(const char* f) { return {{"type", {"string", "null"}}, {"format", f}}; }
json str_fmt(const char* f) { return {{"type", "string"}, {"format", f}}; }
json choice(const std::vector<std::string>& values, bool nullable = false) {
  json e = values;
  if (nullable) e.push_back(nullptr);
  return {{"type", nullable ? json{"string", "null"} : json("string")}, {"enum", e}};
}
json open_obj(json props, std::vector<std::string> required = {}) {
  json o = {{"type", "object"}, {"properties", std::move(props)}};
  if (!required.empty()) o["required"] = required;
  return o;
}

}  // namespace

void CrmModule::add_openapi_schemas(nlohmann::json& s) const {
  const json id = str_fmt("uuid");
  const json nid = nstr_fmt("uuid");
  const json ts = str_fmt("date-time");

  // The kit's resources: derived from their declarations, limits included.
  kit_.add_schemas(s);

  // Deals (the rows are the kit's) and their history
  s["DealChange"] = open_obj({{"id", id},
                              {"deal_id", id},
                              {"pipeline_id", id},
                              {"from_stage_id", nid},
                              {"to_stage_id", nid},
                              {"from_status", choice(deal_statuses(), true)},
                              {"to_status", choice(deal_statuses(), true)},
                              {"changed_by", open_obj({{"type", str()}, {"id", str()}})},
                              {"changed_at", ts}},
                             {"id", "deal_id", "from_stage_id", "to_stage_id", "from_status", "to_status",
                              "changed_by", "changed_at"});

  // Events
  kit::add_event_schema(s, "CrmEvent");
}

}  // namespace cdx::crm
