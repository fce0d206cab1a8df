// CRM's HTTP handlers: parse, call the service on a worker, render. Every route is for the tenant's ADMINs,
// its secret API keys holding crm:read / crm:write, and a SUPERADMIN naming the tenant (a CLIENT gets 403).
#include <fmt/format.h>
#include <boost/beast/core/string.hpp>


#include "common/validate.hpp"
#include "crm/module.hpp"
#include "http/pagination.hpp"
#include "http/router.hpp"
#include "kit/seq_cursor.hpp"

namespace cdx::crm {

using http::Access;
using http::Context;
using http::Method;
using nlohmann::json;

namespace {

constexpr const char* kRead = "crm:read";
constexpr const char* kTag = "crm";

std::string path_id(const Context& ctx, size_t i) { return std::string(ctx.req.param(i)); }

using kit::query_text;

template <class T>
json to_array(const std::vector<T>& items) {
  json out = json::array();
  for (const auto& i : items) out.push_back(to_json(i));
  return out;
}

}  // namespace

void CrmModule::post(http::Router& r, const std::string& path, http::AsyncHandler handler,
                     http::RouteDoc doc) {
  r.add(Method::kPost, path, std::move(handler), std::move(doc));
}

void CrmModule::mount(http::Router& r) {
  kit_.mount(r);
  mount_contacts(r);
  mount_deals(r);
  kit_.mount_events(r, {.path = "/api/v1/crm/events",
                        .scope = kRead,
                        .tag = kTag,
                        .schema = "CrmEvent",
                        .summary = "The tenant's CRM domain events"});
}

// ---- contacts ------------------------------------------------------------------------------------------

void CrmModule::mount_contacts(http::Router& r) {
  const std::string base = "/api/v1/crm/contacts";

  r.add(Method::kGet, base + "/{id}/timeline",
        [this](Context& ctx) -> Task<void> {
          co_await timeline(ctx, "contact_id", "crm_db.contacts", "contact");
        },
        {.access = Access::kTenantAdmin,
         .scope = kRead,
         .summary = "The contact's activities, newest first",
         .tag = kTag,
         .response_schema = "Activity",
         .list = true,
         .query_params = {"type", "sort", "q", "done"}});
}

// ---- deals ---------------------------------------------------------------------------------------------

void CrmModule::mount_deals(http::Router& r) {
  const std::string base = "/api/v1/crm/deals";
  r.add(Method::kGet, base + "/{id}/history",
        [this](Context& ctx) -> Task<void> {
          const http::Page page = http::parse_page(ctx.req);
          const int64_t after = kit::seq_cursor(page, "seq").value_or(0);
          const db::TenantScope& scope = *ctx.tenant;
          auto items = co_await workers_.run(
              [&] { return service_.deal_history(scope, path_id(ctx, 0), page.limit, after); });
          json next = nullptr;
          if (items.size() > static_cast<size_t>(page.limit)) {
            items.pop_back();
            next = http::encode_cursor("seq|" + std::to_string(items.back().seq));
          }
          ctx.res.json(200, json{{"data", to_array(items)}, {"next_cursor", std::move(next)}}.dump());
        },
        {.access = Access::kTenantAdmin,
         .scope = kRead,
         .summary = "The deal's history: creation, stage moves and status changes, oldest first",
         .tag = kTag,
         .response_schema = "DealChange",
         .list = true});

  r.add(Method::kGet, base + "/{id}/timeline",
        [this](Context& ctx) -> Task<void> { co_await timeline(ctx, "deal_id", "crm_db.deals", "deal"); },
        {.access = Access::kTenantAdmin,
         .scope = kRead,
         .summary = "The deal's activities, newest first",
         .tag = kTag,
         .response_schema = "Activity",
         .list = true,
         .query_params = {"type", "sort", "q", "done"}});
}

// ---- timelines -----------------------------------------------------------------------------------------

Task<void> CrmModule::timeline(Context& ctx, const char* column, const char* parent_table, const char* noun) {
  kit::ListQuery q = kit_.read_list(activities_, ctx);
  const std::string parent = path_id(ctx, 0);
  if (!valid_id(parent)) throw Error(Code::kNotFound, fmt::format("No {} has the id '{}'.", noun, parent));
  q.equal.emplace_back(column, parent);
  const kit::Caller c = kit::caller_of(ctx, activities_);
  std::string page = co_await workers_.run([&] {
    json rows = db_->read(c.scope, [&](db::Tx& tx) {
      if (!kit_.exists(tx, c.scope, parent_table, parent))
        throw Error(Code::kNotFound, fmt::format("No {} has the id '{}'.", noun, parent));
      return kit_.list(tx, c, activities_, q);
    });
    return kit_.render_list(activities_, std::move(rows), q);
  });
  ctx.res.json(200, std::move(page));
}

}  // namespace cdx::crm
