// Builds the OpenAPI 3.1 description from the router itself, so it cannot drift from the routes.
//   std::string doc = openapi_document(router, version, modules).dump();
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "kit/module.hpp"
#include "http/router.hpp"

namespace cdx::app {

// modules: those whose routes the router holds (they add their components/schemas).
nlohmann::json openapi_document(const http::Router& router, const std::string& version,
                                const std::vector<Module*>& modules);
const nlohmann::json& openapi_schemas();  // the platform's own components/schemas (Problem, …)

}  // namespace cdx::app
