// OpenAPI schemas derived from the declarations, with the limits the body reader enforces.
#include "kit/kit.hpp"

namespace cdx::kit {

using nlohmann::json;

namespace {

json type_of(const char* t, bool nullable) { return nullable ? json{t, "null"} : json(t); }

json schema_of(const Field& f, bool nullable) {
  json s = json::object();
  switch (f.type) {
    case Type::kText:
      s["type"] = type_of("string", nullable);
      s["minLength"] = f.min_len;
      s["maxLength"] = f.max_len;
      break;
    case Type::kInteger:
      s["type"] = type_of("integer", nullable);
      s["minimum"] = *f.minimum;
      s["maximum"] = *f.maximum;
      break;
    case Type::kBoolean:
      s["type"] = type_of("boolean", nullable);
      break;
    case Type::kId:
    case Type::kDate:
    case Type::kDateTime:
      s["type"] = type_of("string", nullable);
      break;
    case Type::kEnum: {
      s["type"] = type_of("string", nullable);
      json e = f.values;
      if (nullable) e.push_back(nullptr);
      s["enum"] = std::move(e);
      break;
    }
    case Type::kObject:
      s["type"] = type_of("object", nullable);
      if (!f.properties.empty()) {
        json props = json::object();
        for (const auto& m : f.properties)
          props[m.name] = {{"type", {"string", "null"}}, {"maxLength", m.max_len}};
        s["properties"] = std::move(props);
        s["additionalProperties"] = false;
      } else {
        s["description"] = "a JSON object of at most " + std::to_string(f.max_len) + " bytes";
      }
      break;
    case Type::kTextList:
      s["type"] = type_of("array", nullable);
      s["items"] = {{"type", "string"}, {"minLength", 1}, {"maxLength", f.item_max}};
      s["maxItems"] = f.max_len;
      break;
    case Type::kNumber:
      s["type"] = type_of("number", nullable);
      if (f.number_min) s["minimum"] = *f.number_min;
      if (f.number_max) s["maximum"] = *f.number_max;
      break;
    case Type::kJson:
      s["description"] = "any JSON value of at most " + std::to_string(f.max_len) + " bytes";
      break;
    case Type::kObjectList: {
      json props = json::object(), required = json::array();
      for (const auto& m : f.properties) {
        props[m.name] = schema_of(m, m.is_nullable && !m.is_required);
        if (m.is_required) required.push_back(m.name);
      }
      json item = {{"type", "object"}, {"properties", std::move(props)}, {"additionalProperties", false}};
      if (!required.empty()) item["required"] = std::move(required);
      s["type"] = type_of("array", nullable);
      s["items"] = std::move(item);
      s["maxItems"] = f.max_len;
      break;
    }
  }
  if (!f.openapi_format.empty()) s["format"] = f.openapi_format;
  if (!f.pattern.empty()) s["pattern"] = f.pattern;
  if (!f.description.empty()) s["description"] = f.description;
  if (!f.default_value.is_null()) s["default"] = f.default_value;
  // A link: the collection whose rows it names ("crm_db.companies" → /api/v1/crm/companies).
  if (!f.refs_table.empty()) {
    const size_t dot = f.refs_table.find('.');
    std::string module = f.refs_table.substr(0, dot);
    if (module.size() > 3 && module.substr(module.size() - 3) == "_db") module.resize(module.size() - 3);
    s["x-cdx-refs"] = "/api/v1/" + module + "/" + f.refs_table.substr(dot + 1);
  }
  return s;
}

}  // namespace

void Kit::add_schemas(json& schemas) const {
  for (const auto& r : resources_) {
    add_schema(schemas, *r);
    if (!r->csv_routes()) continue;
    const json str = {{"type", "string"}}, integer = {{"type", "integer"}};
    const json problem = {{"type", "object"}, {"properties", {{"field", str}, {"message", str}}}};
    const json row_error = {
        {"type", "object"},
        {"properties", {{"row", integer}, {"errors", {{"type", "array"}, {"items", problem}}}}}};
    schemas["ImportReport"] = {{"type", "object"},
                               {"properties",
                                {{"rows", integer},
                                 {"created", integer},
                                 {"failed", integer},
                                 {"ids", {{"type", "array"}, {"items", str}}},
                                 {"errors", {{"type", "array"}, {"items", row_error}}}}},
                               {"required", {"rows", "created", "failed", "ids", "errors"}}};
  }
}

void add_schema(json& schemas, const Resource& r) {
  const json ts = {{"type", "string"}, {"format", "date-time"}};
  {
    json read = json::object(), create = json::object(), update = json::object();
    std::vector<std::string> all = {"id"}, required;
    read["id"] = {{"type", "string"}, {"format", "uuid"}};
    if (r.shows_tenant_id()) {
      read["tenant_id"] = {{"type", "string"}, {"format", "uuid"}};
      all.push_back("tenant_id");
    }
    for (const Field& f : r.fields()) {
      if (f.is_hidden) continue;
      if (f.is_write_only) {  // in bodies only
        json w = schema_of(f, f.is_nullable);
        w["writeOnly"] = true;
        create[f.name] = w;
        update[f.name] = w;
        if (f.is_required) required.push_back(f.name);
        continue;
      }
      const bool stored_null = f.is_nullable && f.default_value.is_null();
      read[f.name] =
          f.read_schema.empty()
              ? schema_of(f, stored_null)
              : json{{"type", "array"}, {"items", {{"$ref", "#/components/schemas/" + f.read_schema}}}};
      all.push_back(f.name);
      if (f.is_read_only) continue;
      create[f.name] = schema_of(f, f.is_nullable);
      if (!f.is_immutable && !f.is_create_only) update[f.name] = schema_of(f, f.is_nullable);
      if (f.merges && update.contains(f.name))
        update[f.name]["description"] =
            "merged into the stored object (RFC 7396 JSON merge patch: a null member "
            "removes that key; null resets the whole field)";
      if (f.is_required && f.default_value.is_null()) required.push_back(f.name);
    }
    if (r.parent_resource()) {
      read[r.parent_column()] = {{"type", "string"}, {"format", "uuid"}};
      all.push_back(r.parent_column());
    }
    read["created_at"] = ts;
    read["updated_at"] = ts;
    all.push_back("created_at");
    all.push_back("updated_at");
    schemas[r.schema_name()] = {{"type", "object"}, {"properties", read}, {"required", all}};
    if (!r.revealed().empty()) {  // the create answer: the row and the values it shows once
      json once = json::object();
      for (const Field& f : r.revealed()) once[f.name] = schema_of(f, false);
      schemas[r.schema_name() + "Created"] = {
          {"allOf",
           {{{"$ref", "#/components/schemas/" + r.schema_name()}},
            {{"type", "object"}, {"properties", once}, {"description", "shown in the create answer only"}}}}};
    }
    json c = {{"type", "object"}, {"properties", create}, {"additionalProperties", false}};
    if (!required.empty()) c["required"] = required;
    for (const auto& rule : r.at_least_one()) {
      json any = json::array();
      for (const auto& f : rule.fields) any.push_back({{"required", {f}}});
      if (c.contains("anyOf"))
        c["allOf"].push_back({{"anyOf", std::move(any)}});
      else
        c["anyOf"] = std::move(any);
    }
    schemas[r.schema_name() + "Create"] = std::move(c);
    schemas[r.schema_name() + "Update"] = {
        {"type", "object"}, {"properties", update}, {"additionalProperties", false}};
  }
}

void add_body_schema(json& schemas, const Resource& r, const std::string& name) {
  json all = json::object();
  add_schema(all, r);
  schemas[name] = std::move(all[r.schema_name() + "Create"]);
}

}  // namespace cdx::kit
