// A tenant's own content API as OpenAPI 3.1: the delivery and entry routes of each of its content types, with
// the entry data's real schema, for client code generators and API explorers.
#include <fmt/format.h>

#include <set>

#include "cms/service.hpp"

namespace cdx::cms {

using nlohmann::json;

namespace {

// "blog_post" → "BlogPost": the type's name in components/schemas.
std::string schema_name(const std::string& key) {
  std::string out;
  bool upper = true;
  for (char c : key) {
    if (c == '_' || c == '-') {
      upper = true;
      continue;
    }
    out += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    upper = false;
  }
  return out;
}

json schema_ref(const std::string& name) { return {{"$ref", "#/components/schemas/" + name}}; }
json ok(const json& schema, const std::string& what) {
  return {{"200", {{"description", what}, {"content", {{"application/json", {{"schema", schema}}}}}}}};
}
json param(const std::string& name, const std::string& in, const std::string& what, bool required = false) {
  return {{"name", name}, {"in", in}, {"required", required}, {"description", what}, {"schema", {{"type", "string"}}}};
}

}  // namespace

std::string Service::openapi(const db::TenantScope& scope) {
  return db_->read(scope, [&](db::Tx& tx) {
    const kit::Caller c{scope, kit::Actor{"system", "openapi"}, std::nullopt};
    kit::ListQuery q;
    q.limit = 1000;  // the document describes a tenant's first thousand types
    q.descending = false;
    json rows = kit_->list(tx, c, *types_, q);
    const Locales loc = store_.locales(tx, scope);

    json paths = json::object(), schemas = json::object();
    const json uuid = {{"type", "string"}, {"format", "uuid"}};
    const json ts = {{"type", "string"}, {"format", "date-time"}};
    std::set<std::string> names;
    for (const json& row : rows) {
      if (names.size() == static_cast<size_t>(q.limit)) break;  // the list answers one row more
      auto t = type_of(row);
      // Keys that read alike in PascalCase ("post_1", "post1") get a number: names must be distinct.
      std::string name = schema_name(t->key);
      for (int i = 2; !names.insert(name).second; ++i) name = schema_name(t->key) + "_" + std::to_string(i);
      schemas[name + "Data"] = data_schema(*t, SchemaFor::kWrite);
      schemas[name + "DataUpdate"] = data_schema(*t, SchemaFor::kUpdate);
      json published = {{"type", "object"},
                        {"properties",
                         {{"id", uuid},
                          {"type", {{"const", t->key}}},
                          {"version", {{"type", "integer"}}},
                          {"locale", {{"type", "string"}}},
                          {"published_at", ts},
                          {"updated_at", ts},
                          {"data", data_schema(*t, SchemaFor::kDelivery)}}},
                        {"required", {"id", "type", "version", "locale", "published_at", "updated_at", "data"}}};
      if (t->has_rich_text()) {
        json html = json::object();
        for (const auto& f : t->fields)
          if (f.type == "rich_text") html[f.key] = {{"type", {"string", "null"}}, {"contentMediaType", "text/html"}};
        published["properties"]["html"] = {{"type", "object"}, {"properties", html}};
      }
      if (!row.value("description", json()).is_null()) published["description"] = row["description"];
      schemas[name + "Published"] = std::move(published);

      const std::string tag = t->name;
      const json delivery_params = {
          param("locale", "query", "one of " + fmt::format("{}", fmt::join(loc.codes, ", ")) +
                                       "; localized fields fall back to " + loc.default_code),
          param("fields", "query", "only these fields in data, comma-separated"),
          param("populate", "query", "link fields to resolve (a.b for the next level, * for all), up to 3 levels")};
      json list_params = delivery_params;
      for (const char* p : {"sort", "q", "limit", "cursor"})
        list_params.push_back(param(p, "query", std::string(p) == "q" ? "full-text search: every word as a prefix"
                                                                      : std::string(p)));
      for (const auto& f : t->fields)
        list_params.push_back(param("filter[" + f.key + "]", "query",
                                    "equal; filter[" + f.key + "][op] with ne, gt, gte, lt, lte, in, contains, exists"));
      const std::string base = "/api/v1/cms/published/" + t->key;
      paths[base] = {{"get",
                      {{"tags", {tag}},
                       {"summary", "Published " + t->name + " entries"},
                       {"operationId", "list" + name},
                       {"parameters", list_params},
                       {"responses", ok({{"type", "object"},
                                         {"properties",
                                          {{"data", {{"type", "array"}, {"items", schema_ref(name + "Published")}}},
                                           {"next_cursor", {{"type", {"string", "null"}}}}}}},
                                        "a page")}}}};
      json one_params = delivery_params;
      one_params.push_back(param("id", "path", "the entry's id", true));
      one_params.push_back(param("preview", "query", "a preview token: the entry's draft"));
      paths[base + "/{id}"] = {{"get",
                                {{"tags", {tag}},
                                 {"summary", "One published " + t->name + " entry"},
                                 {"operationId", "get" + name},
                                 {"parameters", one_params},
                                 {"responses", ok(schema_ref(name + "Published"), "the entry")}}}};
      const std::string manage = "/api/v1/cms/content-types/" + t->key + "/entries";
      paths[manage] = {{"post",
                        {{"tags", {tag}},
                         {"summary", "Create a " + t->name + " entry (a draft)"},
                         {"operationId", "create" + name},
                         {"requestBody",
                          {{"required", true},
                           {"content",
                            {{"application/json",
                              {{"schema",
                                {{"type", "object"},
                                 {"required", {"data"}},
                                 {"properties",
                                  {{"data", schema_ref(name + "Data")}, {"publish_at", ts}, {"unpublish_at", ts}}}}}}}}}}},
                         {"responses", {{"201", {{"description", "the entry"}}}}}}}};
      paths[manage + "/{id}"] = {{"patch",
                                  {{"tags", {tag}},
                                   {"summary", "Change a " + t->name + " entry's draft"},
                                   {"operationId", "update" + name},
                                   {"parameters", {param("id", "path", "the entry's id", true)}},
                                   {"requestBody",
                                    {{"required", true},
                                     {"content",
                                      {{"application/json",
                                        {{"schema",
                                          {{"type", "object"},
                                           {"properties", {{"data", schema_ref(name + "DataUpdate")},
                                                           {"publish_at", ts},
                                                           {"unpublish_at", ts}}}}}}}}}}},
                                   {"responses", {{"200", {{"description", "the entry"}}}}}}}};
    }
    json doc = {{"openapi", "3.1.0"},
                {"info",
                 {{"title", "Content API"},
                  {"version", "1"},
                  {"description",
                   "This tenant's content types and their entries: the delivery API (a publishable key) and entry "
                   "writes (an ADMIN or a key holding cms:write)."}}},
                {"servers", {{{"url", "/"}}}},  // relative to where the document is served
                {"paths", std::move(paths)},
                {"components",
                 {{"schemas", std::move(schemas)},
                  {"securitySchemes", {{"apiKey", {{"type", "apiKey"}, {"in", "header"}, {"name", "X-API-Key"}}}}}}},
                {"security", {{{"apiKey", json::array()}}}}};
    return doc.dump();
  });
}

}  // namespace cdx::cms
