// GET /api/v1/overview: the platform's numbers for the operator (SUPERADMIN).
// GET /api/v1/tenants/{id}/overview: the tenant's numbers across the modules, from core's own counters
// (core/aggregates.hpp). The SUPERADMIN reads any tenant's; a tenant's ADMIN (or a secret key holding
// events:read) its own tenant's only: naming another tenant, existing or not, is 403 like the event log.
#include <utility>
#include "common/task.hpp"

#include <fmt/format.h>

#include "core/module.hpp"
#include "http/router.hpp"

namespace cdx::core {

using http::Access;
using http::Context;
using http::Method;

std::optional<std::string> CoreModule::own_tenant_only(const Context& ctx, std::string_view what) {
  const Principal& p = *ctx.principal;
  if (p.kind == Principal::Kind::kSuperadmin) return std::nullopt;
  if (!ctx.tenant || p.role == Role::kClient)
    throw Error(Code::kForbidden,
                fmt::format("The tenant {} is for the SUPERADMIN and the tenant's ADMINs.", what));
  return std::string(ctx.tenant->tenant_id());
}

std::string CoreModule::tenant_id_for(std::string_view key, const std::optional<std::string>& own,
                                      std::string_view what) {
  if (!own) return service_.get_tenant(key).id;
  auto t = service_.find_tenant(key);
  if (!t || t->tenant.id != *own)
    throw Error(Code::kForbidden, fmt::format("A tenant's credential reads its own tenant's {} only.", what));
  return *own;
}

void CoreModule::mount_overview(http::Router& r) {
  r.add(Method::kGet, "/api/v1/overview",
        [this](Context& ctx) -> Task<void> {
          auto out = co_await workers_.run([&] { return aggregates_.platform_overview(); });
          int64_t up = 0, total = 0;
          for (const auto& s : services_.list()) {
            ++total;
            up += s.value("status", "") == "up";
          }
          out["services"] = {{"total", total}, {"up", up}, {"down", total - up}};
          ctx.res.json(200, out.dump());
        },
        {.access = Access::kSuperadmin,
         .summary =
             "The platform's numbers: tenants by status, API calls today and in 30 days, events per hour "
             "over the last 24 hours (from the aggregates), services up and down",
         .tag = "tenants",
         .response_schema = "PlatformOverview"});

  r.add(Method::kGet, "/api/v1/tenants/{id}/overview",
        [this](Context& ctx) -> Task<void> {
          const std::optional<std::string> own = own_tenant_only(ctx, "overview");
          const std::string key(ctx.req.param(0));
          auto out = co_await workers_.run(
              [&] { return aggregates_.overview(tenant_id_for(key, own, "overview")); });
          ctx.res.json(200, out.dump());
        },
        {.access = Access::kAuthenticated,
         .scope = "events:read",
         .summary =
             "A tenant's numbers across the modules (users, API keys, contacts, companies, deals, published "
             "entries, media, billing, events in the last 24 hours, API calls), kept up to date from the "
             "event log within about a second. The SUPERADMIN reads any tenant's; a tenant's ADMIN its own",
         .tag = "tenants",
         .response_schema = "TenantOverview"});
}

void add_overview_schema(nlohmann::json& schemas) {
  const nlohmann::json count = {{"type", "integer"}, {"minimum", 0}};
  const nlohmann::json money = {
      {"type", "object"},
      {"additionalProperties", {{"type", "integer"}}},
      {"description", "minor units per ISO 4217 currency ({\"EUR\": 123450} is 1234.50 EUR)"}};
  auto object = [](nlohmann::json properties) {
    nlohmann::json required = nlohmann::json::array();
    for (const auto& [k, _] : properties.items()) required.push_back(k);
    return nlohmann::json{{"type", "object"}, {"properties", std::move(properties)}, {"required", required}};
  };
  schemas["TenantOverview"] = object(
      {{"tenant_id", {{"type", "string"}}},
       {"users", count},
       {"api_keys", count},
       {"contacts", count},
       {"companies", count},
       {"deals", object({{"open", count},
                         {"open_value", money},
                         {"won_this_month", count},
                         {"won_value_this_month", money}})},
       {"entries", object({{"published", count}})},
       {"media", count},
       {"billing", object({{"active_subscriptions", count}, {"mrr", money}, {"open_invoices", count}})},
       {"events_24h", count},
       {"api_calls", object({{"today", count}, {"last_30_days", count}})},
       {"updated_at", {{"type", {"string", "null"}}, {"format", "date-time"}}}});
  schemas["PlatformOverview"] = object(
      {{"tenants", object({{"total", count}, {"active", count}, {"suspended", count}})},
       {"api_calls", object({{"today", count}, {"last_30_days", count}})},
       {"events_24h", count},
       {"events_by_hour",
        {{"type", "array"},
         {"items", object({{"hour", {{"type", "string"}, {"format", "date-time"}}}, {"events", count}})}}},
       {"services", object({{"total", count}, {"up", count}, {"down", count}})}});
}

}  // namespace cdx::core
