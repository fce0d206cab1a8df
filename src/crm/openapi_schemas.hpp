// The CRM's OpenAPI component schemas (Contact, ContactCreate, Deal, …), added to /openapi.json by the app.
//   crm::add_openapi_schemas(schemas);   // schemas: the components/schemas object
#pragma once
#include <nlohmann/json.hpp>

namespace cdx::crm {

void add_openapi_schemas(nlohmann::json& schemas);

}  // namespace cdx::crm
