// Core's HTTP handlers: parse, call the service on a worker, render. Access is declared per route.
#include <utility>
#include "common/task.hpp"

#include "common/clock.hpp"
#include "common/json_body.hpp"
#include "core/module.hpp"
#include "http/assertion.hpp"
#include "http/pagination.hpp"
#include "http/router.hpp"

namespace cdx::core {

using http::Access;
using http::Context;
using http::Method;
namespace asio = boost::asio;

namespace {

TenantPatch parse_tenant_patch(std::string_view body) {
  JsonBody in(body);
  TenantPatch p;
  p.name = in.optional_string("name", 1, 200);
  p.plan = in.optional_string("plan", 2, 63);
  p.settings = in.optional_object("settings");
  if (in.has("slug")) in.fail("slug", "cannot be changed");
  if (in.has("status")) in.fail("status", "use /suspend or /resume");
  in.finish();
  return p;
}

NewPlan parse_new_plan(std::string_view body) {
  JsonBody in(body);
  NewPlan p;
  p.key = in.required_string("key", 2, 63);
  p.name = in.required_string("name", 1, 200);
  p.rate_limit_per_minute = in.optional_int("rate_limit_per_minute", 1, 100'000'000).value_or(6000);
  p.max_users = in.optional_int("max_users", 0, 100'000'000).value_or(100);
  p.max_api_keys = in.optional_int("max_api_keys", 0, 1'000'000).value_or(20);
  if (auto m = in.optional_string_array("modules")) p.modules = *m;
  in.finish();
  return p;
}

PlanPatch parse_plan_patch(std::string_view body) {
  JsonBody in(body);
  PlanPatch p;
  p.name = in.optional_string("name", 1, 200);
  p.rate_limit_per_minute = in.optional_int("rate_limit_per_minute", 1, 100'000'000);
  p.max_users = in.optional_int("max_users", 0, 100'000'000);
  p.max_api_keys = in.optional_int("max_api_keys", 0, 1'000'000);
  p.modules = in.optional_string_array("modules");
  if (in.has("key")) in.fail("key", "cannot be changed");
  in.finish();
  return p;
}

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

void CoreModule::mount(http::Router& r) {
  r.add(
      Method::kPost, "/api/v1/tenants",
      [this](Context& ctx) -> Task<void> {
        JsonBody in(ctx.req.body);
        NewTenant t;
        t.name = in.required_string("name", 1, 200);
        t.slug = in.required_string("slug", 1, 63);
        t.plan = in.optional_string("plan", 2, 63);
        t.admin_email = in.required_string("admin_email", 3, 254);
        t.admin_password = in.optional_string("admin_password", 1, 256);
        t.settings = in.optional_object("settings").value_or(nlohmann::json::object());
        in.finish();
        auto out = co_await workers_.run([&] { return service_.create_tenant(t); });
        ctx.res.json(201, out.dump());
      },
      {.access = Access::kSuperadmin,
       .summary = "Create a tenant with its first ADMIN user and a secret API key (shown once)",
       .tag = "tenants",
       .request_schema = "TenantCreate",
       .response_schema = "TenantCreated",
       .success_status = 201});

  r.add(
      Method::kGet, "/api/v1/tenants",
      [this](Context& ctx) -> Task<void> {
        const http::Page page = http::parse_page(ctx.req);
        TenantFilter f;
        f.limit = page.limit;
        f.after_id = page.after;
        f.status = ctx.req.query_param("status");
        f.plan = ctx.req.query_param("plan");
        f.q = ctx.req.query_param("q");
        if (f.q && f.q->empty()) f.q.reset();
        if (f.status && *f.status != "active" && *f.status != "suspended")
          throw Error::validation({{"status", "must be 'active' or 'suspended'"}});
        auto tenants = co_await workers_.run([&] { return service_.list_tenants(f); });
        nlohmann::json items = nlohmann::json::array();
        for (const auto& t : tenants) items.push_back(to_json(t));
        ctx.res.json(200, http::render_page(std::move(items), page));
      },
      {.access = Access::kSuperadmin,
       .summary = "List tenants, newest first",
       .tag = "tenants",
       .response_schema = "Tenant",
       .list = true,
       .query_params = {"status", "plan", "q"}});

  r.add(
      Method::kGet, "/api/v1/tenants/{id}",
      [this](Context& ctx) -> Task<void> {
        auto t = co_await workers_.run([&] { return service_.get_tenant(ctx.req.param(0)); });
        ctx.res.json(200, to_json(t).dump());
      },
      {.access = Access::kSuperadmin, .summary = "Get a tenant by id or slug", .tag = "tenants",
       .response_schema = "Tenant"});

  r.add(
      Method::kPatch, "/api/v1/tenants/{id}",
      [this](Context& ctx) -> Task<void> {
        TenantPatch patch = parse_tenant_patch(ctx.req.body);
        auto t = co_await workers_.run([&] { return service_.update_tenant(ctx.req.param(0), patch); });
        tenants_changed(ctx);
        ctx.res.json(200, to_json(t).dump());
      },
      {.access = Access::kSuperadmin, .summary = "Update a tenant's name, plan or settings", .tag = "tenants",
       .request_schema = "TenantUpdate", .response_schema = "Tenant"});

  for (auto [path, status, summary] : {std::tuple{"/api/v1/tenants/{id}/suspend", "suspended", "Suspend a tenant"},
                                       std::tuple{"/api/v1/tenants/{id}/resume", "active", "Resume a tenant"}}) {
    r.add(
        Method::kPost, path,
        [this, status = std::string(status)](Context& ctx) -> Task<void> {
          auto t = co_await workers_.run([&] { return service_.set_status(ctx.req.param(0), status); });
          tenants_changed(ctx);
          ctx.res.json(200, to_json(t).dump());
        },
        {.access = Access::kSuperadmin, .summary = summary, .tag = "tenants", .response_schema = "Tenant"});
  }

  r.add(
      Method::kDelete, "/api/v1/tenants/{id}",
      [this](Context& ctx) -> Task<void> {
        co_await workers_.run([&] { service_.delete_tenant(ctx.req.param(0)); });
        tenants_changed(ctx);
        ctx.res.no_content();
      },
      {.access = Access::kSuperadmin, .summary = "Delete a tenant and purge its data in every module",
       .tag = "tenants", .success_status = 204});

  r.add(
      Method::kGet, "/api/v1/plans",
      [this](Context& ctx) -> Task<void> {
        auto plans = co_await workers_.run([&] { return service_.list_plans(); });
        nlohmann::json items = nlohmann::json::array();
        for (const auto& p : plans) items.push_back(to_json(p));
        ctx.res.json(200, nlohmann::json{{"data", std::move(items)}, {"next_cursor", nullptr}}.dump());
      },
      {.access = Access::kAuthenticated, .summary = "List platform plans", .tag = "plans",
       .response_schema = "Plan", .list = true});

  r.add(
      Method::kPost, "/api/v1/plans",
      [this](Context& ctx) -> Task<void> {
        NewPlan p = parse_new_plan(ctx.req.body);
        auto plan = co_await workers_.run([&] { return service_.create_plan(p); });
        ctx.res.json(201, to_json(plan).dump());
      },
      {.access = Access::kSuperadmin, .summary = "Create a plan", .tag = "plans", .request_schema = "PlanCreate",
       .response_schema = "Plan", .success_status = 201});

  r.add(
      Method::kPatch, "/api/v1/plans/{id}",
      [this](Context& ctx) -> Task<void> {
        PlanPatch patch = parse_plan_patch(ctx.req.body);
        auto plan = co_await workers_.run([&] { return service_.update_plan(ctx.req.param(0), patch); });
        tenants_changed(ctx);
        ctx.res.json(200, to_json(plan).dump());
      },
      {.access = Access::kSuperadmin, .summary = "Update a plan's name, quotas or modules", .tag = "plans",
       .request_schema = "PlanUpdate", .response_schema = "Plan"});

  r.add(
      Method::kGet, "/api/v1/tenants/{id}/usage",
      [this](Context& ctx) -> Task<void> {
        const std::string to = usage_day(ctx, "to", format_rfc3339(Clock::now()).substr(0, 10));
        const std::string from = usage_day(ctx, "from", format_rfc3339(Clock::now() - std::chrono::hours(24 * 29)).substr(0, 10));
        if (from > to) throw Error::validation({{"from", "must not be after to"}});
        auto out = co_await workers_.run([&] { return service_.usage(ctx.req.param(0), from, to); });
        ctx.res.json(200, out.dump());
      },
      {.access = Access::kSuperadmin,
       .summary = "API calls of a tenant per day and per API key (default: the last 30 days, UTC)",
       .tag = "tenants",
       .response_schema = "TenantUsage",
       .query_params = {"from", "to"}});

  r.add_sync(
      Method::kGet, "/api/v1/services",
      [this](Context& ctx) {
        ctx.res.json(200, nlohmann::json{{"data", services_.list()}, {"next_cursor", nullptr}}.dump());
      },
      {.access = Access::kSuperadmin,
       .summary = "Every service of the platform: URL, status, latency, last check, version and recent history",
       .tag = "services",
       .response_schema = "Service",
       .list = true});
}

}  // namespace cdx::core
