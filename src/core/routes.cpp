// Core's HTTP handlers beside the kit's (tenant list, get and update; plans): tenant creation, status,
// deletion and usage, and the service registry. Parse, call the service on a worker, render.
#include <utility>
#include "common/task.hpp"

#include "common/clock.hpp"
#include "core/module.hpp"
#include "http/assertion.hpp"
#include "http/router.hpp"

namespace cdx::core {

using http::Access;
using http::Context;
using http::Method;
namespace asio = boost::asio;

namespace {

// A day parameter of the usage query: YYYY-MM-DD, a real calendar day.
std::string usage_day(const Context& ctx, std::string_view name, std::string fallback) {
  auto v = ctx.req.query_param(name);
  if (!v) return fallback;
  if (v->size() != 10 || !parse_rfc3339(*v + "T00:00:00Z"))
    throw Error::validation({{std::string(name), "must be a date, YYYY-MM-DD"}});
  return *v;
}

}  // namespace

void CoreModule::tenants_changed(http::Context& ctx) const {
  if (behind_gateway_) ctx.res.header_lines += http::kInvalidateLine;
}

kit::Resource CoreModule::announced(kit::Resource r, bool every_tenant) {
  kit::Hooks h = r.hooks();
  h.after_commit = [this, every_tenant](Context& ctx, kit::Op op, const nlohmann::json& row) {
    if (op == kit::Op::kCreate) return;  // a new plan applies to no tenant yet
    service_.tenant_changed(every_tenant ? std::string() : row.at("id").get<std::string>());
    tenants_changed(ctx);
  };
  r.hooks(std::move(h));
  return r;
}

void CoreModule::add_openapi_schemas(nlohmann::json& schemas) const {
  kit_.add_schemas(schemas);
  webhooks_.add_openapi_schemas(schemas);
  kit::add_body_schema(schemas, tenant_create_body_, "TenantCreate");
  add_overview_schema(schemas);
  schemas["TenantCreated"] = {
      {"allOf",
       {{{"$ref", "#/components/schemas/Tenant"}},
        {{"type", "object"},
         {"properties",
          {{"admin", {{"$ref", "#/components/schemas/User"}}}, {"api_key", {{"type", "string"}}}}},
         {"required", {"admin", "api_key"}}}}}};
  const nlohmann::json text = {{"type", "string"}}, maybe_text = {{"type", {"string", "null"}}};
  schemas["Event"] = {{"type", "object"},
                      {"properties",
                       {{"seq", {{"type", "integer"}}},
                        {"id", {{"type", "string"}, {"format", "uuid"}}},
                        {"tenant_id", text},
                        {"type", text},
                        {"source", text},
                        {"subject", maybe_text},
                        {"actor", {{"type", {"object", "null"}}}},
                        {"data", {{"type", "object"}}},
                        {"created_at", {{"type", "string"}, {"format", "date-time"}}}}},
                      {"required", {"seq", "id", "tenant_id", "type", "source", "data", "created_at"}}};
}

void CoreModule::mount(http::Router& r) {
  webhooks_.mount(r);
  r.add(Method::kPost, "/api/v1/tenants",
        [this](Context& ctx) -> Task<void> {
          nlohmann::json fields = kit::read_body(tenant_create_body_, ctx.req.body, kit::Mode::kCreate);
          const std::string email = fields.at("admin_email").get<std::string>();
          std::optional<std::string> password;
          if (fields.contains("admin_password") && fields["admin_password"].is_string())
            password = fields["admin_password"].get<std::string>();
          fields.erase("admin_email");
          fields.erase("admin_password");
          const kit::Actor actor = kit::actor_of(ctx);
          auto out =
              co_await workers_.run([&] { return service_.create_tenant(fields, email, password, actor); });
          ctx.res.json(201, out.dump());
        },
        {.access = Access::kSuperadmin,
         .summary = "Create a tenant with its first ADMIN user and a secret API key (shown once)",
         .tag = "tenants",
         .request_schema = "TenantCreate",
         .response_schema = "TenantCreated",
         .success_status = 201});

  kit_.mount(r);  // GET /api/v1/tenants[/{id}], PATCH /api/v1/tenants/{id}; /api/v1/plans
  mount_events(r);
  mount_overview(r);

  for (auto [path, status, summary] :
       {std::tuple{"/api/v1/tenants/{id}/suspend", "suspended", "Suspend a tenant"},
        std::tuple{"/api/v1/tenants/{id}/resume", "active", "Resume a tenant"}}) {
    r.add(Method::kPost, path,
          [this, status = std::string(status)](Context& ctx) -> Task<void> {
            const kit::Actor actor = kit::actor_of(ctx);
            auto t =
                co_await workers_.run([&] { return service_.set_status(ctx.req.param(0), status, actor); });
            tenants_changed(ctx);
            ctx.res.json(200, to_json(t).dump());
          },
          {.access = Access::kSuperadmin, .summary = summary, .tag = "tenants", .response_schema = "Tenant"});
  }

  r.add(Method::kDelete, "/api/v1/tenants/{id}",
        [this](Context& ctx) -> Task<void> {
          const kit::Actor actor = kit::actor_of(ctx);
          co_await workers_.run([&] { service_.delete_tenant(ctx.req.param(0), actor); });
          tenants_changed(ctx);
          ctx.res.no_content();
        },
        {.access = Access::kSuperadmin,
         .summary = "Delete a tenant and purge its data in every module",
         .tag = "tenants",
         .success_status = 204});

  r.add(Method::kGet, "/api/v1/tenants/{id}/usage",
        [this](Context& ctx) -> Task<void> {
          const std::string to = usage_day(ctx, "to", format_rfc3339(Clock::now()).substr(0, 10));
          const std::string from = usage_day(
              ctx, "from", format_rfc3339(Clock::now() - std::chrono::hours(24 * 29)).substr(0, 10));
          if (from > to) throw Error::validation({{"from", "must not be after to"}});
          const std::optional<std::string> own = own_tenant_only(ctx, "usage");
          const std::string key(ctx.req.param(0));
          auto out = co_await workers_.run(
              [&] { return service_.usage(tenant_id_for(key, own, "usage"), from, to); });
          ctx.res.json(200, out.dump());
        },
        {.access = Access::kAuthenticated,
         .scope = "events:read",
         .summary = "API calls of a tenant per day and per API key (default: the last 30 days, UTC). The "
                    "SUPERADMIN reads any tenant's; a tenant's ADMIN its own",
         .tag = "tenants",
         .response_schema = "TenantUsage",
         .query_params = {"from", "to"}});

  r.add_sync(
      Method::kGet, "/api/v1/services",
      [this](Context& ctx) {
        ctx.res.json(200, nlohmann::json{{"data", services_.list()}, {"next_cursor", nullptr}}.dump());
      },
      {.access = Access::kSuperadmin,
       .summary =
           "Every service of the platform: URL, status, latency, last check, version and recent history",
       .tag = "services",
       .response_schema = "Service",
       .list = true});
}

}  // namespace cdx::core
