// The CMS's HTTP handlers beside the kit's CRUD: publishing, versions, preview tokens (ADMINs and secret
// keys holding cms:write / cms:read), and the delivery API (any member of the tenant holding cms:read: a
// publishable key, a CLIENT, an ADMIN). Parse, call the service on a worker, render.
#include <fmt/format.h>

#include <charconv>

#include "cms/module.hpp"
#include "common/ids.hpp"
#include "http/pagination.hpp"
#include "http/router.hpp"

namespace cdx::cms {

using http::Access;
using http::Context;
using http::Method;
using nlohmann::json;

namespace {

constexpr const char* kRead = "cms:read";
constexpr const char* kWrite = "cms:write";
constexpr const char* kTag = "cms";
const std::string kEntries = "/api/v1/cms/content-types/{key}/entries";

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

int64_t version_param(const Context& ctx, size_t i) {
  const std::string_view s = ctx.req.param(i);
  int64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || p != s.data() + s.size() || n < 1)
    throw Error(Code::kNotFound, fmt::format("The entry has no version '{}'.", s));
  return n;
}

// A delivery answer: its ETag, and 304 when the client holds it already.
void answer_cached(Context& ctx, std::string body, bool preview) {
  const std::string etag = "\"" + sha256_hex(body).substr(0, 32) + "\"";
  ctx.res.header("ETag", etag);
  ctx.res.header("Cache-Control", preview ? "no-store" : "no-cache");
  const std::string_view match = ctx.req.header("if-none-match");
  if (!preview && !match.empty() && (match == etag || match == "*" || match.find(etag) != std::string_view::npos)) {
    ctx.res.status = 304;
    ctx.res.body.clear();
    return;
  }
  ctx.res.json(200, std::move(body));
}

kit::Resource preview_body() {
  kit::Resource r("cms", "preview_token", "preview_tokens");
  r.field(kit::integer("ttl_seconds", 60, 86400).defaults(600).doc("how long the token works (default 10 minutes)"));
  return r;
}

}  // namespace

void CmsModule::mount(http::Router& r) {
  kit_.mount(r);
  mount_entries(r);
  mount_delivery(r);
}

void CmsModule::mount_entries(http::Router& r) {
  // publish / unpublish: the answer commits with the change (Idempotency-Key).
  for (const bool on : {true, false}) {
    const std::string path = kEntries + (on ? "/{id}/publish" : "/{id}/unpublish");
    r.add(Method::kPost, path,
          [this, on, route_key = "POST " + path](Context& ctx) -> Task<void> {
            kit::Caller c = kit::caller_of(ctx, entries_);
            const std::string id(ctx.req.param(1));
            co_await kit_.write_answer(ctx, route_key, [&](db::Tx& tx) {
              kit_.resolve_parent(tx, c, entries_, std::string(ctx.req.param(0)));
              ctx.res.json(200, dump(on ? service_.publish(tx, c, id) : service_.unpublish(tx, c, id)));
            });
          },
          {.access = Access::kTenantAdmin,
           .scope = kWrite,
           .summary = on ? "Publish the entry's current version (the delivery API serves it from now on)"
                         : "Take the entry off the delivery API (it stays as a draft)",
           .tag = kTag,
           .response_schema = "Entry"});
  }

  r.add(Method::kGet, kEntries + "/{id}/versions",
        [this](Context& ctx) -> Task<void> {
          std::vector<FieldError> errors;
          const int limit = http::parse_limit(ctx.req, errors);
          std::optional<int64_t> before;
          if (auto cursor = ctx.req.query_param("cursor"); cursor && !cursor->empty()) {
            std::string decoded;
            int64_t n = 0;
            const bool ok = cursor->size() < 100 && base64url_decode(*cursor, decoded) && decoded.rfind("v|", 0) == 0 &&
                            std::from_chars(decoded.data() + 2, decoded.data() + decoded.size(), n).ec == std::errc();
            if (!ok) errors.push_back({"cursor", "is not a cursor returned by this list"});
            before = n;
          }
          if (!errors.empty()) throw Error::validation(std::move(errors));
          kit::Caller c = kit::caller_of(ctx, entries_);
          std::string body = co_await workers_.run([&] {
            return dump(db_->read(c.scope, [&](db::Tx& tx) {
              kit_.resolve_parent(tx, c, entries_, std::string(ctx.req.param(0)));
              return service_.versions(tx, c, std::string(ctx.req.param(1)), limit, before);
            }));
          });
          ctx.res.json(200, std::move(body));
        },
        {.access = Access::kTenantAdmin,
         .scope = kRead,
         .summary = "The entry's versions, newest first: who saved each and when",
         .tag = kTag,
         .response_schema = "EntryVersionSummary",
         .list = true});

  r.add(Method::kGet, kEntries + "/{id}/versions/{version}",
        [this](Context& ctx) -> Task<void> {
          const int64_t n = version_param(ctx, 2);
          kit::Caller c = kit::caller_of(ctx, entries_);
          std::string body = co_await workers_.run([&] {
            return dump(db_->read(c.scope, [&](db::Tx& tx) {
              kit_.resolve_parent(tx, c, entries_, std::string(ctx.req.param(0)));
              return service_.version(tx, c, std::string(ctx.req.param(1)), n);
            }));
          });
          ctx.res.json(200, std::move(body));
        },
        {.access = Access::kTenantAdmin,
         .scope = kRead,
         .summary = "One version of the entry, with its data",
         .tag = kTag,
         .response_schema = "EntryVersion"});

  const std::string restore = kEntries + "/{id}/versions/{version}/restore";
  r.add(Method::kPost, restore,
        [this, route_key = "POST " + restore](Context& ctx) -> Task<void> {
          const int64_t n = version_param(ctx, 2);
          kit::Caller c = kit::caller_of(ctx, entries_);
          co_await kit_.write_answer(ctx, route_key, [&](db::Tx& tx) {
            kit_.resolve_parent(tx, c, entries_, std::string(ctx.req.param(0)));
            ctx.res.json(200, dump(service_.restore(tx, c, std::string(ctx.req.param(1)), n)));
          });
        },
        {.access = Access::kTenantAdmin,
         .scope = kWrite,
         .summary = "Make that version's data the entry's draft (a new version; publish it to serve it)",
         .tag = kTag,
         .response_schema = "Entry"});

  static const kit::Resource kPreview = preview_body();
  const std::string preview = kEntries + "/{id}/preview-token";
  r.add(Method::kPost, preview,
        [this, route_key = "POST " + preview](Context& ctx) -> Task<void> {
          const json body = ctx.req.body.empty() ? json{{"ttl_seconds", 600}}
                                                 : kit::read_body(kPreview, ctx.req.body, kit::Mode::kCreate);
          kit::Caller c = kit::caller_of(ctx, entries_);
          co_await kit_.write_answer(ctx, route_key, [&](db::Tx& tx) {
            kit_.resolve_parent(tx, c, entries_, std::string(ctx.req.param(0)));
            ctx.res.json(201, dump(service_.preview_token(tx, c, std::string(ctx.req.param(1)),
                                                          body["ttl_seconds"].get<int64_t>())));
          });
          ctx.res.header("Cache-Control", "no-store");
        },
        {.access = Access::kTenantAdmin,
         .scope = kWrite,
         .summary = "Mint a short-lived token that shows this entry's draft on the delivery API (?preview=)",
         .tag = kTag,
         .request_schema = "PreviewTokenCreate",
         .request_optional = true,
         .response_schema = "PreviewToken",
         .success_status = 201});
}

void CmsModule::mount_delivery(http::Router& r) {
  const std::vector<std::string> params = {"locale",   "fields", "sort",  "populate",
                                           "q",        "filter[field]", "filter[field][op]"};
  r.add(Method::kGet, "/api/v1/cms/published/{type_key}",
        [this](Context& ctx) -> Task<void> {
          DeliveryParams p{ctx.req.query_params()};
          const std::string key(ctx.req.param(0));
          std::string body =
              co_await workers_.run([&] { return service_.published_list(*ctx.tenant, key, p); });
          answer_cached(ctx, std::move(body), false);
        },
        {.access = Access::kTenantMember,
         .scope = kRead,
         .summary = "Published entries of a content type (publishable key): filter[field][op]=, sort=, fields=, "
                    "populate=, q=, locale=; ETag and If-None-Match",
         .tag = kTag,
         .response_schema = "PublishedEntry",
         .list = true,
         .query_params = params});

  r.add(Method::kGet, "/api/v1/cms/published/{type_key}/{id}",
        [this](Context& ctx) -> Task<void> {
          DeliveryParams p{ctx.req.query_params()};
          std::optional<std::string> preview = ctx.req.query_param("preview");
          if (preview && preview->empty()) preview.reset();
          const std::string key(ctx.req.param(0)), id(ctx.req.param(1));
          std::string body =
              co_await workers_.run([&] { return service_.published_one(*ctx.tenant, key, id, p, preview); });
          answer_cached(ctx, std::move(body), preview.has_value());
        },
        {.access = Access::kTenantMember,
         .scope = kRead,
         .summary = "One published entry (publishable key); ?preview=<token> shows its draft instead",
         .tag = kTag,
         .response_schema = "PublishedEntry",
         .query_params = {"locale", "fields", "populate", "preview"}});
}

void CmsModule::add_openapi_schemas(json& schemas) const {
  kit_.add_schemas(schemas);
  kit::add_body_schema(schemas, preview_body(), "PreviewTokenCreate");
  const json actor = {{"type", "object"},
                      {"properties", {{"type", {{"type", "string"}}}, {"id", {{"type", "string"}}}}}};
  schemas["EntryVersionSummary"] = {
      {"type", "object"},
      {"properties",
       {{"version", {{"type", "integer"}}},
        {"created_by", actor},
        {"created_at", {{"type", "string"}, {"format", "date-time"}}},
        {"size", {{"type", "integer"}, {"description", "bytes of data"}}},
        {"published", {{"type", "boolean"}, {"description", "the version the delivery API serves"}}},
        {"current", {{"type", "boolean"}, {"description", "the draft's version"}}}}}};
  schemas["EntryVersion"] = {{"type", "object"},
                             {"properties",
                              {{"version", {{"type", "integer"}}},
                               {"data", {{"type", "object"}}},
                               {"created_by", actor},
                               {"created_at", {{"type", "string"}, {"format", "date-time"}}}}}};
  schemas["PreviewToken"] = {
      {"type", "object"},
      {"properties",
       {{"token", {{"type", "string"}, {"description", "cdx_pv_…: pass as ?preview= on the delivery API"}}},
        {"entry_id", {{"type", "string"}, {"format", "uuid"}}},
        {"expires_at", {{"type", "string"}, {"format", "date-time"}}},
        {"url", {{"type", "string"}}}}}};
  schemas["PublishedEntry"] = {
      {"type", "object"},
      {"properties",
       {{"id", {{"type", "string"}, {"format", "uuid"}}},
        {"type", {{"type", "string"}, {"description", "the content type's key"}}},
        {"version", {{"type", "integer"}}},
        {"locale", {{"type", "string"}}},
        {"published_at", {{"type", "string"}, {"format", "date-time"}}},
        {"updated_at", {{"type", "string"}, {"format", "date-time"}}},
        {"data",
         {{"type", "object"},
          {"description", "the type's fields in the locale asked for (else the default locale); populated "
                          "references are PublishedEntry objects, media Media objects"}}},
        {"html", {{"type", "object"}, {"description", "rich-text fields rendered as sanitized HTML"}}},
        {"preview", {{"type", "boolean"}, {"description", "true when this is a draft shown to a preview token"}}}}}};
  // The field list's items, as the create schema documents them.
  schemas["ContentTypeField"] = schemas["ContentTypeCreate"]["properties"]["fields"]["items"];
}

}  // namespace cdx::cms
