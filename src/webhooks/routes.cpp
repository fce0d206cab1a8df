// /api/v1/webhooks: endpoints, their secrets, test events, the delivery log and replays. Parse, call the
// service on a worker, render. Tenant ADMINs, the SUPERADMIN naming a tenant, and secret keys holding
// webhooks:read / webhooks:write.
#include <utility>
#include "common/task.hpp"

#include "common/clock.hpp"
#include "common/validate.hpp"
#include "http/pagination.hpp"
#include "http/router.hpp"
#include "kit/kit.hpp"
#include "webhooks/address.hpp"
#include "webhooks/webhooks.hpp"

namespace cdx::webhooks {

using http::Access;
using http::Context;
using http::Method;
using nlohmann::json;

namespace {

// The event log's type grammar (GET /api/v1/events?type=, core's EventFilter): an exact name, a prefix
// ("crm.*" or "crm."), or "*". Core links webhooks, so webhooks cannot use core's parser: the same grammar,
// matched by type_matches().
bool valid_type_pattern(const std::string& t) {
  if (t == "*") return true;
  std::string_view s = t;
  if (s.size() > 2 && s.ends_with(".*")) s.remove_suffix(1);
  if (s.empty() || s.front() == '.') return false;
  char prev = 0;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.')) return false;
    if (c == '.' && prev == '.') return false;
    prev = c;
  }
  return true;
}

const kit::Resource& endpoint_body() {
  static const kit::Resource r = [] {
    kit::Resource r("webhooks", "endpoint", "endpoints");
    r.field(kit::text("url", kMaxUrl)
                .required()
                .verbatim()
                .check([](json& v, kit::Problems& p) {
                  std::string why;
                  if (!parse_url(v.get_ref<const std::string&>(), &why)) p.fail(why);
                })
                .doc("where deliveries are POSTed: an absolute http:// or https:// URL without credentials"))
        .field(kit::text_list("event_types", 50, 200)
                   .required()
                   .min(1)
                   .check([](json& v, kit::Problems& p) {
                     if (v.empty()) p.fail("must name at least one event type (or *)");
                     for (size_t i = 0; i < v.size(); ++i)
                       if (!valid_type_pattern(v[i].get<std::string>()))
                         p.add(
                             {"event_types[" + std::to_string(i) + "]",
                              "must be an event type (crm.contact.created), a prefix (crm.* or crm.) or *"});
                   })
                   .doc("event types to deliver: exact names, prefixes ending in .* or . (crm.*, crm.), or * "
                        "for all"))
        .field(kit::text("description", 500))
        .field(kit::boolean("enabled").doc("false pauses deliveries; true re-enables a disabled endpoint"));
    return r;
  }();
  return r;
}

// Path ids that cannot be ours answer 404 without asking the database (as the kit's routes do).
std::string path_id(const Context& ctx, size_t i, const char* what) {
  std::string id(ctx.req.param(i));
  if (!valid_uuid(id)) throw Error(Code::kNotFound, std::string(what) + " '" + id + "' does not exist");
  return id;
}

// The lists are newest first by id (UUIDv7): the cursor is the last id seen (http::render_page's).
std::optional<std::string> cursor_of(const http::Page& page) {
  if (!page.after) return std::nullopt;
  if (!valid_uuid(*page.after)) throw Error::validation({{"cursor", "is not a cursor of this list"}});
  return page.after;
}

// RFC 3339, in the stored form (text order is time order), as GET /api/v1/events takes since=.
std::optional<std::string> time_param(const Context& ctx, std::string_view name) {
  auto v = kit::query_text(ctx, name, 64);
  if (!v) return std::nullopt;
  auto t = parse_rfc3339(*v);
  if (!t) throw Error::validation({{std::string(name), "must be an RFC 3339 time (2026-12-01T00:00:00Z)"}});
  return format_rfc3339(*t);
}

void no_store(Context& ctx) { ctx.res.header("Cache-Control", "no-store"); }

}  // namespace

void Webhooks::add_openapi_schemas(json& schemas) const {
  kit::add_body_schema(schemas, endpoint_body(), "WebhookEndpointCreate");
  schemas["WebhookEndpointCreate"]["examples"] = json::array(
      {{{"url", "https://hooks.example.com/cdx"}, {"event_types", {"crm.*", "cms.entry.published"}}}});
  const json text = {{"type", "string"}}, maybe_text = {{"type", {"string", "null"}}};
  schemas["WebhookEndpoint"] = {
      {"type", "object"},
      {"properties",
       {{"id", text},
        {"url", text},
        {"event_types", {{"type", "array"}, {"items", text}}},
        {"description", maybe_text},
        {"enabled", {{"type", "boolean"}}},
        {"disabled_reason", maybe_text},
        {"secret",
         {{"type", "string"}, {"description", "whsec_…: answered by create and rotate-secret only"}}},
        {"created_at", {{"type", "string"}, {"format", "date-time"}}},
        {"updated_at", {{"type", "string"}, {"format", "date-time"}}}}},
      {"required", {"id", "url", "event_types", "enabled", "created_at", "updated_at"}}};
  schemas["WebhookDelivery"] = {
      {"type", "object"},
      {"properties",
       {{"id", text},
        {"endpoint_id", text},
        {"webhook_id",
         {{"type", "string"}, {"description", "the webhook-id header, the same on every attempt"}}},
        {"event_id", text},
        {"event_type", text},
        {"status", {{"type", "string"}, {"enum", {"pending", "succeeded", "failed"}}}},
        {"tries", {{"type", "integer"}}},
        {"next_attempt_at", maybe_text},
        {"last_attempt_at", maybe_text},
        {"last_status_code", {{"type", {"integer", "null"}}}},
        {"last_error", maybe_text},
        {"attempts",
         {{"type", "array"},
          {"items",
           {{"type", "object"},
            {"properties",
             {{"attempted_at", text},
              {"status_code", {{"type", {"integer", "null"}}}},
              {"latency_ms", {{"type", "integer"}}},
              {"response", maybe_text},
              {"error", maybe_text}}}}}}},
        {"created_at", text},
        {"updated_at", text}}},
      {"required", {"id", "endpoint_id", "webhook_id", "event_type", "status", "attempts"}}};
}

void Webhooks::mount(http::Router& r) {
  const std::string base = "/api/v1/webhooks/endpoints";
  r.add(Method::kGet, base,
        [this](Context& ctx) -> Task<void> {
          const http::Page page = http::parse_page(ctx.req);
          auto cursor = cursor_of(page);
          json out = co_await workers_.run([&] { return list_endpoints(*ctx.tenant, page.limit, cursor); });
          ctx.res.json(200, http::render_page(std::move(out), page));
        },
        {.access = Access::kTenantAdmin,
         .scope = "webhooks:read",
         .summary = "The tenant's webhook endpoints",
         .tag = "webhooks",
         .response_schema = "WebhookEndpoint",
         .list = true});
  r.add(Method::kPost, base,
        [this](Context& ctx) -> Task<void> {
          json fields = kit::read_body(endpoint_body(), ctx.req.body, kit::Mode::kCreate);
          json out = co_await workers_.run([&] { return create_endpoint(*ctx.tenant, fields); });
          no_store(ctx);
          ctx.res.json(201, out.dump());
        },
        {.access = Access::kTenantAdmin,
         .scope = "webhooks:write",
         .summary = "Create a webhook endpoint; its signing secret (whsec_…) is answered now and never again",
         .tag = "webhooks",
         .request_schema = "WebhookEndpointCreate",
         .response_schema = "WebhookEndpoint",
         .success_status = 201});
  r.add(Method::kGet, base + "/{id}",
        [this](Context& ctx) -> Task<void> {
          const std::string id = path_id(ctx, 0, "webhook endpoint");
          json out = co_await workers_.run([&] { return get_endpoint(*ctx.tenant, id); });
          ctx.res.json(200, out.dump());
        },
        {.access = Access::kTenantAdmin,
         .scope = "webhooks:read",
         .summary = "One webhook endpoint",
         .tag = "webhooks",
         .response_schema = "WebhookEndpoint"});
  r.add(Method::kPatch, base + "/{id}",
        [this](Context& ctx) -> Task<void> {
          const std::string id = path_id(ctx, 0, "webhook endpoint");
          json fields = kit::read_body(endpoint_body(), ctx.req.body, kit::Mode::kUpdate);
          json out = co_await workers_.run([&] { return update_endpoint(*ctx.tenant, id, fields); });
          ctx.res.json(200, out.dump());
        },
        {.access = Access::kTenantAdmin,
         .scope = "webhooks:write",
         .summary = "Change a webhook endpoint (enabled: true re-enables a disabled one)",
         .tag = "webhooks",
         .request_schema = "WebhookEndpointCreate",
         .response_schema = "WebhookEndpoint"});
  r.add(Method::kDelete, base + "/{id}",
        [this](Context& ctx) -> Task<void> {
          const std::string id = path_id(ctx, 0, "webhook endpoint");
          co_await workers_.run([&] { delete_endpoint(*ctx.tenant, id); });
          ctx.res.no_content();
        },
        {.access = Access::kTenantAdmin,
         .scope = "webhooks:write",
         .summary = "Delete a webhook endpoint with its delivery log",
         .tag = "webhooks",
         .success_status = 204});
  r.add(Method::kPost, base + "/{id}/rotate-secret",
        [this](Context& ctx) -> Task<void> {
          const std::string id = path_id(ctx, 0, "webhook endpoint");
          json out = co_await workers_.run([&] { return rotate_secret(*ctx.tenant, id); });
          no_store(ctx);
          ctx.res.json(200, out.dump());
        },
        {.access = Access::kTenantAdmin,
         .scope = "webhooks:write",
         .summary =
             "A new signing secret, answered once; the old one signs too (a second signature) for 24 hours",
         .tag = "webhooks",
         .response_schema = "WebhookEndpoint"});
  r.add(Method::kPost, base + "/{id}/test",
        [this](Context& ctx) -> Task<void> {
          const std::string id = path_id(ctx, 0, "webhook endpoint");
          json out = co_await workers_.run([&] { return send_test(*ctx.tenant, id); });
          ctx.res.json(202, out.dump());
        },
        {.access = Access::kTenantAdmin,
         .scope = "webhooks:write",
         .summary = "Send a webhook.test event to the endpoint now; answers its delivery",
         .tag = "webhooks",
         .response_schema = "WebhookDelivery",
         .success_status = 202});
  r.add(
      Method::kGet, base + "/{id}/deliveries",
      [this](Context& ctx) -> Task<void> {
        const std::string id = path_id(ctx, 0, "webhook endpoint");
        const http::Page page = http::parse_page(ctx.req);
        auto cursor = cursor_of(page);
        auto status = kit::query_text(ctx, "status", 20);
        if (status && *status != "pending" && *status != "succeeded" && *status != "failed")
          throw Error::validation({{"status", "must be one of pending, succeeded, failed"}});
        json out = co_await workers_.run(
            [&] { return list_deliveries(*ctx.tenant, id, page.limit, cursor, status); });
        ctx.res.json(200, http::render_page(std::move(out), page));
      },
      {.access = Access::kTenantAdmin,
       .scope = "webhooks:read",
       .summary = "The endpoint's delivery log, newest first, each delivery with its attempts (time, status "
                  "code, latency, response excerpt, error); status= filters",
       .tag = "webhooks",
       .response_schema = "WebhookDelivery",
       .list = true,
       .query_params = {"status"}});
  r.add(
      Method::kPost, base + "/{id}/replay",
      [this](Context& ctx) -> Task<void> {
        const std::string id = path_id(ctx, 0, "webhook endpoint");
        const auto since = time_param(ctx, "since");
        if (!since)
          throw Error::validation({{"since", "is required: an RFC 3339 time (2026-12-01T00:00:00Z)"}});
        const std::string from = *since;
        json out = co_await workers_.run([&] { return replay_since(*ctx.tenant, id, from); });
        ctx.res.json(202, out.dump());
      },
      {.access = Access::kTenantAdmin,
       .scope = "webhooks:write",
       .summary = "Queue the endpoint's matching events from the event log since a time (since=, RFC 3339): "
                  "at most 100 000 a call; answers queued, more and next_since (where to go on)",
       .tag = "webhooks",
       .success_status = 202,
       .query_params = {"since"}});
  r.add(Method::kPost, "/api/v1/webhooks/deliveries/{id}/replay",
        [this](Context& ctx) -> Task<void> {
          const std::string id = path_id(ctx, 0, "webhook delivery");
          json out = co_await workers_.run([&] { return replay_delivery(*ctx.tenant, id); });
          ctx.res.json(202, out.dump());
        },
        {.access = Access::kTenantAdmin,
         .scope = "webhooks:write",
         .summary = "Send a delivery's message again (the same webhook-id); while an attempt of it is in "
                    "flight, a new attempt follows that one",
         .tag = "webhooks",
         .response_schema = "WebhookDelivery",
         .success_status = 202});
}

}  // namespace cdx::webhooks
