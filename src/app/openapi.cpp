#include "app/openapi.hpp"


namespace cdx::app {

namespace {

nlohmann::json str() { return {{"type", "string"}}; }
nlohmann::json str_fmt(const char* f) { return {{"type", "string"}, {"format", f}}; }
nlohmann::json integer() { return {{"type", "integer"}}; }
nlohmann::json ref(const std::string& name) { return {{"$ref", "#/components/schemas/" + name}}; }
nlohmann::json obj(nlohmann::json props, std::vector<std::string> required = {}) {
  nlohmann::json o = {{"type", "object"}, {"properties", std::move(props)}};
  if (!required.empty()) o["required"] = required;
  return o;
}

// Who may call an operation (the route's declared Access): lets clients and the isolation tests tell a
// tenant resource from the operator's.
const char* access_name(http::Access a) {
  switch (a) {
    case http::Access::kPublic: return "public";
    case http::Access::kAuthenticated: return "authenticated";
    case http::Access::kSuperadmin: return "superadmin";
    case http::Access::kTenantMember: return "tenant_member";
    case http::Access::kTenantAdmin: return "tenant_admin";
    case http::Access::kTenantAdminOrSelf: return "tenant_admin_or_self";
    case http::Access::kService: return "service";
  }
  return "public";
}

}  // namespace

const nlohmann::json& openapi_schemas() {
  static const nlohmann::json kSchemas = [] {
    nlohmann::json s;
    // Tenant, TenantCreate, TenantCreated, TenantUpdate, Plan, PlanCreate, PlanUpdate: core's, from its kit
    // declarations (CoreModule::add_openapi_schemas).
    s["Problem"] = obj({{"type", str()},
                        {"title", str()},
                        {"status", integer()},
                        {"detail", str()},
                        {"code", str()},
                        {"request_id", str()},
                        {"errors", {{"type", "array"},
                                    {"items", obj({{"field", str()}, {"message", str()}})}}}},
                       {"type", "title", "status", "code"});
    s["User"] = obj({{"id", str_fmt("uuid")},
                     {"tenant_id", str_fmt("uuid")},
                     {"email", str_fmt("email")},
                     {"name", str()},
                     {"role", {{"type", "string"}, {"enum", {"ADMIN", "CLIENT"}}}},
                     {"status", str()},
                     {"created_at", str_fmt("date-time")},
                     {"updated_at", str_fmt("date-time")},
                     {"last_login_at", {{"type", {"string", "null"}}, {"format", "date-time"}}}});
    const nlohmann::json check = obj({{"status", {{"type", "string"}, {"enum", {"up", "down", "unknown"}}}},
                                      {"latency_ms", {{"type", "number"}}},
                                      {"checked_at", str_fmt("date-time")}});
    s["Service"] = obj({{"name", str()},
                        {"url", str_fmt("uri")},
                        {"status", {{"type", "string"}, {"enum", {"up", "down", "unknown"}}}},
                        {"latency_ms", {{"type", "number"}}},
                        {"last_check", {{"type", {"string", "null"}}, {"format", "date-time"}}},
                        {"version", {{"type", {"string", "null"}}}},
                        {"error", {{"type", {"string", "null"}}}},
                        {"history", {{"type", "array"}, {"items", check}}}},
                       {"name", "url", "status", "latency_ms", "last_check", "version", "history"});
    s["TenantUsage"] = obj(
        {{"tenant_id", str_fmt("uuid")},
         {"from", str_fmt("date")},
         {"to", str_fmt("date")},
         {"total", integer()},
         {"days", {{"type", "array"}, {"items", obj({{"day", str_fmt("date")}, {"calls", integer()}})}}},
         {"api_keys",
          {{"type", "array"},
           {"items", obj({{"api_key_id", {{"type", {"string", "null"}}}}, {"calls", integer()}})}}}},
        {"tenant_id", "from", "to", "total", "days", "api_keys"});
    s["SuperadminLogin"] = obj({{"username", str()}, {"password", str()}}, {"username", "password"});
    s["Login"] = obj({{"email", str_fmt("email")}, {"password", str()}, {"tenant", str()}}, {"email", "password"});
    s["TokenAnswer"] = obj({{"access_token", str()},
                            {"token_type", {{"type", "string"}, {"enum", {"Bearer"}}}},
                            {"expires_in", integer()},
                            {"refresh_token", str()},
                            {"scope", str()}},
                           {"access_token", "token_type", "expires_in"});
    s["Me"] = obj({{"id", str()},
                   {"type", {{"type", "string"}, {"enum", {"superadmin", "user", "api_key"}}}},
                   {"email", str()},
                   {"username", str()},
                   {"name", str()},
                   {"role", {{"type", "string"}, {"enum", {"SUPERADMIN", "ADMIN", "CLIENT"}}}},
                   {"tenant_id", {{"type", {"string", "null"}}}},
                   {"scopes", {{"type", "array"}, {"items", str()}}}},
                  {"id", "role", "tenant_id", "scopes"});
    s["ApiKey"] = obj({{"id", str_fmt("uuid")},
                       {"tenant_id", str_fmt("uuid")},
                       {"name", str()},
                       {"type", {{"type", "string"}, {"enum", {"secret", "publishable"}}}},
                       {"prefix", str()},
                       {"scopes", {{"type", "array"}, {"items", str()}}},
                       {"expires_at", {{"type", {"string", "null"}}, {"format", "date-time"}}},
                       {"last_used_at", {{"type", {"string", "null"}}, {"format", "date-time"}}},
                       {"created_at", str_fmt("date-time")}});
    s["ApiKeyCreate"] = obj({{"name", str()},
                             {"type", {{"type", "string"}, {"enum", {"secret", "publishable"}}}},
                             {"scopes", {{"type", "array"}, {"items", str()}}},
                             {"expires_at", str_fmt("date-time")}},
                            {"name"});
    s["ApiKeyCreated"] = {{"allOf", {ref("ApiKey"), obj({{"key", str()}}, {"key"})}}};
    s["Refresh"] = obj({{"refresh_token", str()}}, {"refresh_token"});
    s["Logout"] = obj({{"refresh_token", str()}});
    s["Register"] = obj({{"email", str_fmt("email")}, {"password", str()}, {"name", str()}, {"tenant", str()}},
                        {"email", "password"});
    s["PasswordForgot"] = obj({{"email", str_fmt("email")}, {"tenant", str()}}, {"email"});
    s["PasswordReset"] = obj({{"token", str()}, {"password", str()}}, {"token", "password"});
    s["UserCreate"] = obj({{"email", str_fmt("email")},
                           {"name", str()},
                           {"role", {{"type", "string"}, {"enum", {"ADMIN", "CLIENT"}}}},
                           {"password", str()}},
                          {"email"});
    s["UserUpdate"] = obj({{"name", str()},
                           {"role", {{"type", "string"}, {"enum", {"ADMIN", "CLIENT"}}}},
                           {"status", {{"type", "string"}, {"enum", {"active", "disabled"}}}},
                           {"password", str()}});
    s["AuditEntry"] = obj({{"id", str_fmt("uuid")},
                           {"action", str()},
                           {"actor", obj({{"type", str()}, {"id", {{"type", {"string", "null"}}}}})},
                           {"target", obj({{"type", {{"type", {"string", "null"}}}}, {"id", {{"type", {"string", "null"}}}}})},
                           {"ip", {{"type", {"string", "null"}}}},
                           {"details", {{"type", "object"}}},
                           {"created_at", str_fmt("date-time")}},
                          {"id", "action", "actor", "created_at"});
    s["OAuthTokenRequest"] = obj({{"grant_type", {{"type", "string"},
                                                   {"enum", {"authorization_code", "client_credentials", "refresh_token"}}}},
                                  {"code", str()},
                                  {"redirect_uri", str()},
                                  {"code_verifier", str()},
                                  {"refresh_token", str()},
                                  {"scope", str()},
                                  {"client_id", str()},
                                  {"client_secret", str()}},
                                 {"grant_type"});
    s["OAuthTokenOnly"] = obj({{"token", str()},
                               {"token_type_hint", {{"type", "string"}, {"enum", {"access_token", "refresh_token"}}}},
                               {"client_id", str()},
                               {"client_secret", str()}},
                              {"token"});
    s["OAuthSignInForm"] = obj({{"email", str()},
                                {"password", str()},
                                {"csrf_token", str()},
                                {"client_id", str()},
                                {"redirect_uri", str()},
                                {"response_type", str()},
                                {"scope", str()},
                                {"state", str()},
                                {"nonce", str()},
                                {"code_challenge", str()},
                                {"code_challenge_method", str()}},
                               {"email", "password", "csrf_token", "client_id"});
    s["Health"] = obj({{"status", {{"type", "string"}, {"enum", {"ok", "degraded", "down"}}}},
                       {"service", str()},
                       {"version", str()},
                       {"checks", {{"type", "object"}}}},
                      {"status", "service", "version", "checks"});
    // OAuth2 / OIDC provider.
    const nlohmann::json strings = {{"type", "array"}, {"items", str()}};
    const nlohmann::json grant_types = {
        {"type", "array"},
        {"items", {{"type", "string"}, {"enum", {"authorization_code", "client_credentials", "refresh_token"}}}}};
    s["OAuthClient"] = obj({{"id", str_fmt("uuid")},
                            {"client_id", str()},
                            {"tenant_id", str_fmt("uuid")},
                            {"name", str()},
                            {"type", {{"type", "string"}, {"enum", {"confidential", "public"}}}},
                            {"token_endpoint_auth_method",
                             {{"type", "string"}, {"enum", {"client_secret_basic", "none"}}}},
                            {"redirect_uris", strings},
                            {"allowed_origins", strings},
                            {"grant_types", grant_types},
                            {"scopes", strings},
                            {"created_by", {{"type", {"string", "null"}}}},
                            {"created_at", str_fmt("date-time")},
                            {"updated_at", str_fmt("date-time")}},
                           {"id", "client_id", "tenant_id", "name", "type", "redirect_uris", "allowed_origins",
                            "grant_types", "scopes", "created_at", "updated_at"});
    s["OAuthClientCreate"] = obj({{"name", str()},
                                  {"type", {{"type", "string"}, {"enum", {"confidential", "public"}},
                                            {"default", "confidential"}}},
                                  {"redirect_uris", strings},
                                  {"allowed_origins", strings},
                                  {"grant_types", grant_types},
                                  {"scopes", strings}},
                                 {"name"});
    // The authorization-code grant (the default) needs a redirect URI: the example shows a valid client.
    s["OAuthClientCreate"]["examples"] = {
        {{"name", "Mobile app"}, {"redirect_uris", {"https://app.example.com/callback"}}}};
    s["OAuthClientUpdate"] = obj({{"name", str()},
                                  {"redirect_uris", strings},
                                  {"allowed_origins", strings},
                                  {"grant_types", grant_types},
                                  {"scopes", strings}});
    s["OAuthClientCreated"] = {{"allOf", {ref("OAuthClient"), obj({{"client_secret", str()}})}}};
    s["OAuthTokenAnswer"] = obj({{"access_token", str()},
                                 {"token_type", {{"type", "string"}, {"enum", {"Bearer"}}}},
                                 {"expires_in", integer()},
                                 {"refresh_token", str()},
                                 {"scope", str()},
                                 {"id_token", str()}},
                                {"access_token", "token_type", "expires_in", "scope"});
    s["OAuthError"] = obj({{"error", str()}, {"error_description", str()}}, {"error"});
    s["OAuthIntrospection"] = obj({{"active", {{"type", "boolean"}}},
                                   {"token_type", {{"type", "string"}, {"enum", {"Bearer", "refresh_token"}}}},
                                   {"scope", str()},
                                   {"client_id", str()},
                                   {"username", str()},
                                   {"sub", str()},
                                   {"tid", str()},
                                   {"role", str()},
                                   {"iss", str()},
                                   {"aud", str()},
                                   {"jti", str()},
                                   {"exp", integer()},
                                   {"iat", integer()}},
                                  {"active"});
    s["OidcUserInfo"] = obj({{"sub", str()},
                             {"email", str_fmt("email")},
                             {"email_verified", {{"type", "boolean"}}},
                             {"name", str()},
                             {"preferred_username", str()},
                             {"tenant_id", str_fmt("uuid")},
                             {"tid", str_fmt("uuid")}},
                            {"sub", "email", "email_verified", "tenant_id"});
    s["OidcDiscovery"] = obj({{"issuer", str_fmt("uri")},
                              {"authorization_endpoint", str_fmt("uri")},
                              {"token_endpoint", str_fmt("uri")},
                              {"userinfo_endpoint", str_fmt("uri")},
                              {"jwks_uri", str_fmt("uri")},
                              {"revocation_endpoint", str_fmt("uri")},
                              {"introspection_endpoint", str_fmt("uri")},
                              {"response_types_supported", strings},
                              {"grant_types_supported", strings},
                              {"subject_types_supported", strings},
                              {"id_token_signing_alg_values_supported", strings},
                              {"token_endpoint_auth_methods_supported", strings},
                              {"code_challenge_methods_supported", strings},
                              {"scopes_supported", strings}},
                             {"issuer", "authorization_endpoint", "token_endpoint", "jwks_uri",
                              "response_types_supported", "subject_types_supported",
                              "id_token_signing_alg_values_supported"});
    return s;
  }();
  return kSchemas;
}

nlohmann::json openapi_document(const http::Router& router, const std::string& version,
                                const std::vector<Module*>& modules) {
  nlohmann::json schemas = openapi_schemas();
  for (const Module* m : modules) m->add_openapi_schemas(schemas);
  nlohmann::json paths = nlohmann::json::object();
  for (const auto& route : router.routes()) {
    const auto& d = route->doc;
    if (d.access == http::Access::kService) continue;  // internal to the constellation
    if (route.get() == router.fallback()) continue;     // the dashboard's files, not the API
    nlohmann::json op = {{"x-cdx-access", access_name(d.access)},
                         {"summary", d.summary},
                         {"operationId", std::string(http::method_name(route->method)) + " " + route->pattern},
                         {"tags", {d.tag.empty() ? "operations" : d.tag}}};
    nlohmann::json params = nlohmann::json::array();
    for (size_t pos = route->pattern.find('{'); pos != std::string::npos; pos = route->pattern.find('{', pos + 1)) {
      const size_t end = route->pattern.find('}', pos);
      params.push_back({{"name", route->pattern.substr(pos + 1, end - pos - 1)},
                        {"in", "path"},
                        {"required", true},
                        {"schema", str()}});
    }
    if (d.list) {
      params.push_back({{"name", "limit"}, {"in", "query"}, {"schema", {{"type", "integer"}, {"minimum", 1}, {"maximum", 200}, {"default", 50}}}});
      params.push_back({{"name", "cursor"}, {"in", "query"}, {"schema", str()}});
    }
    for (const auto& q : d.query_params) params.push_back({{"name", q}, {"in", "query"}, {"schema", str()}});
    if (d.access != http::Access::kPublic) {
      params.push_back({{"name", "X-Tenant-ID"}, {"in", "header"}, {"required", false}, {"schema", str()},
                        {"description", "Tenant id or slug; a SUPERADMIN names the tenant it acts in"}});
      op["security"] = nlohmann::json::array({{{"bearerAuth", nlohmann::json::array()}},
                                              {{"apiKeyAuth", nlohmann::json::array()}}});
    }
    if (!params.empty()) op["parameters"] = params;
    if (!d.request_schema.empty())
      op["requestBody"] = {{"required", !d.request_optional},
                           {"content", {{"application/json", {{"schema", ref(d.request_schema)}}}}}};
    if (!d.multipart_schema.empty())
      op["requestBody"] = {{"required", true},
                           {"content", {{"multipart/form-data", {{"schema", ref(d.multipart_schema)}}}}}};
    if (!d.form_schema.empty())
      op["requestBody"] = {{"required", true},
                           {"content", {{"application/x-www-form-urlencoded", {{"schema", ref(d.form_schema)}}}}}};
    nlohmann::json ok = {{"description", d.summary}};
    if (!d.response_schema.empty()) {
      nlohmann::json schema = ref(d.response_schema);
      if (d.list)
        schema = obj({{"data", {{"type", "array"}, {"items", schema}}}, {"next_cursor", {{"type", {"string", "null"}}}}},
                     {"data", "next_cursor"});
      ok["content"] = {{"application/json", {{"schema", schema}}}};
    }
    nlohmann::json problem = {{"description", "Problem details (RFC 9457)"},
                              {"content", {{"application/problem+json", {{"schema", ref("Problem")}}}}}};
    op["responses"] = {{std::to_string(d.success_status), ok}, {"default", problem}};
    std::string method(http::method_name(route->method));
    for (auto& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    paths[route->pattern][method] = op;
  }
  return {{"openapi", "3.1.0"},
          {"info", {{"title", "CDX Metatron API"}, {"version", version},
                    {"description", "Multi-tenant backend platform: tenants, identity, CRM, CMS, billing, analytics."}}},
          {"paths", paths},
          {"components",
           {{"schemas", std::move(schemas)},
            {"securitySchemes",
             {{"bearerAuth", {{"type", "http"}, {"scheme", "bearer"}, {"bearerFormat", "JWT"}}},
              {"apiKeyAuth", {{"type", "apiKey"}, {"in", "header"}, {"name", "X-API-Key"}}}}}}}};
}

}  // namespace cdx::app
