// Builds the OpenAPI 3.1 description from the router itself, so it cannot drift from the routes.
//   std::string doc = openapi_json(router, version);
#pragma once
#include <nlohmann/json.hpp>

#include <string>

#include "http/router.hpp"

namespace cdx::app {

nlohmann::json openapi_document(const http::Router& router, const std::string& version);
const nlohmann::json& openapi_schemas();  // components/schemas

}  // namespace cdx::app
