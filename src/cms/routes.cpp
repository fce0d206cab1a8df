// The CMS's HTTP handlers beside the kit's CRUD: publishing, versions, preview tokens (ADMINs and secret
// keys holding cms:write / cms:read), and the delivery API (any member of the tenant holding cms:read: a
// publishable key, a CLIENT, an ADMIN). Parse, call the service on a worker, render.
#include <fmt/format.h>

#include <charconv>
#include <fstream>

#include "cms/module.hpp"
#include "common/clock.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/validate.hpp"
#include "http/multipart.hpp"
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

std::string etag_of(std::string_view body) { return "\"" + sha256_hex(body).substr(0, 32) + "\""; }

bool holds(const Context& ctx, std::string_view etag) {
  const std::string_view match = ctx.req.header("if-none-match");
  return !match.empty() && (match == etag || match == "*" || match.find(etag) != std::string_view::npos);
}

// An answer ready to keep and to send again: its body, ETag and caching headers.
CachedAnswer make_answer(std::string body, std::string_view content_type, std::string_view cache_control) {
  CachedAnswer a;
  a.etag = etag_of(body);
  a.body = std::move(body);
  a.content_type = std::string(content_type);
  a.header_lines = "ETag: " + a.etag + "\r\nCache-Control: " + std::string(cache_control) + "\r\n";
  return a;
}

// The answer, or 304 when the client holds it already (never for drafts).
void send(Context& ctx, const CachedAnswer& a, bool revalidate = true) {
  ctx.res.header_lines += a.header_lines;
  if (revalidate && holds(ctx, a.etag)) {
    ctx.res.status = 304;
    ctx.res.body.clear();
    return;
  }
  ctx.res.status = 200;
  if (a.content_type == "application/json") {
    ctx.res.content_type = "application/json";
  } else {  // owned by the response: a cached answer may be dropped before it is written
    ctx.res.content_type_storage = a.content_type;
    ctx.res.content_type = ctx.res.content_type_storage;
  }
  ctx.res.body.assign(a.body);
}

// The cache key of a read: the tenant and the request target (path and query, as sent).
const std::string& cache_key(const Context& ctx) {
  thread_local std::string key;
  key.assign(ctx.tenant ? ctx.tenant->tenant_id() : std::string_view());
  key += ' ';
  key += ctx.req.target;
  return key;
}

kit::Resource preview_body() {
  kit::Resource r("cms", "preview_token", "preview_tokens");
  r.field(kit::integer("ttl_seconds", 60, 86400).defaults(600).doc("how long the token works (default 10 minutes)"));
  return r;
}

}  // namespace

void CmsModule::mount(http::Router& r) {
  kit_.mount(r);
  kit_.mount_events(r, {.path = "/api/v1/cms/events",
                        .scope = kRead,
                        .tag = kTag,
                        .schema = "CmsEvent",
                        .summary = "The tenant's CMS events: content types, entries, publishing and media"});
  mount_entries(r);
  mount_delivery(r);
  mount_media(r);
}

void CmsModule::tick() {
  service_.run_schedule();
  const int64_t now = Clock::unix_seconds();
  if (now - last_sweep_ < 600) return;
  last_sweep_ = now;
  // Files no media row holds (deleted, or an upload whose row was never written), an hour old or more.
  for (const auto& tenant_id : files_.tenants()) {
    try {
      const db::TenantScope scope = minter_.mint(tenant_id);
      auto live = db_->read(scope, [&](db::Tx& tx) { return store_.media_hashes(tx, scope); });
      if (int n = files_.sweep(tenant_id, live, 3600)) log::info("cms: unused media files removed", {{"tenant_id", tenant_id}, {"files", n}});
    } catch (const std::exception& e) {
      log::warn("cms: media sweep failed", {{"tenant_id", tenant_id}, {"error", e.what()}});
    }
  }
}

void CmsModule::mount_media(http::Router& r) {
  static const kit::Resource kUpload = [] {
    kit::Resource u("cms", "media_upload", "media");
    u.field(kit::text("alt", 500)).field(kit::text("folder", 200));
    return u;
  }();
  r.add(Method::kPost, "/api/v1/cms/media",
        [this](Context& ctx) -> Task<void> {
          const std::string tenant_id = ctx.tenant->tenant_id();
          json patch;
          co_await workers_.run([&] {
            auto parts = http::parse_multipart(ctx.req.header("content-type"), ctx.req.body);
            const http::Part* file = http::find_part(parts, "file");
            if (!file || !file->has_filename)
              throw Error::validation({{"file", "is required: a part named file with a filename"}});
            json fields = json::object();
            for (const char* name : {"alt", "folder"})
              if (const http::Part* p = http::find_part(parts, name)) fields[name] = std::string(p->body);
            patch = kit::read_body(kUpload, fields.dump(), kit::Mode::kCreate);
            std::string filename = trim(file->filename.substr(file->filename.find_last_of("/\\") + 1));
            if (filename.empty() || utf8_length(filename) > 255 || !clean_text(filename, false))
              throw Error::validation({{"file", "needs a file name of 1 to 255 characters of text"}});
            auto info = core_.find_tenant(tenant_id);
            const int64_t plan_mb = info ? info->plan.max_upload_mb : 25;
            if (static_cast<int64_t>(file->body.size()) > plan_mb * 1024 * 1024)
              throw Error(Code::kPayloadTooLarge,
                          fmt::format("The file is larger than the {} MiB the tenant's plan allows.", plan_mb));
            const media::Kind kind = media::inspect(file->body, filename);
            patch["filename"] = filename;
            patch["mime_type"] = kind.mime;
            patch["size"] = static_cast<int64_t>(file->body.size());
            patch["width"] = kind.width ? json(*kind.width) : json(nullptr);
            patch["height"] = kind.height ? json(*kind.height) : json(nullptr);
            patch["hash"] = files_.store(tenant_id, file->body);  // before the row: a sweep removes strays
          });
          kit::Caller c = kit::caller_of(ctx, media_);
          co_await kit_.write_answer(ctx, "POST /api/v1/cms/media",
                                     [&](db::Tx& tx) { ctx.res.json(201, dump(kit_.create(tx, c, media_, patch))); });
          service_.cache().changed(tenant_id);
        },
        {.access = Access::kTenantAdmin,
         .scope = kWrite,
         .summary = "Upload a file (multipart/form-data: file, alt, folder); its type is read from its bytes",
         .tag = kTag,
         .multipart_schema = "MediaUpload",
         .response_schema = "Media",
         .success_status = 201,
         .body_limit = static_cast<size_t>(config_.media_limit)});

  r.add(Method::kGet, "/api/v1/cms/files/{tenant_id}/{id}",
        [this](Context& ctx) {
          auto hit = service_.cache().get(ctx.req.param(0), cache_key(ctx));
          if (hit) send(ctx, *hit);
          return hit != nullptr;
        },
        [this](Context& ctx) -> Task<void> {
          const std::string_view tenant_param = ctx.req.param(0);
          DeliveryCache& cache = service_.cache();
          std::string ck = cache_key(ctx);
          const std::string tenant_id = lowercase(tenant_param), id = lowercase(ctx.req.param(1));
          if (!valid_uuid(tenant_id) || !valid_uuid(id)) throw Error(Code::kNotFound, "No such media file.");
          const media::Transform t = media::parse_transform(ctx.req.query_params());
          const uint64_t gen = cache.generation(tenant_id);
          CachedAnswer a = co_await workers_.run([&] {
            const db::TenantScope scope = minter_.mint(tenant_id);
            const kit::Caller c{scope, kit::Actor{"system", "files"}, std::nullopt};
            auto row = db_->read(scope, [&](db::Tx& tx) { return kit_.find(tx, c, media_, id); });
            if (!row) throw Error(Code::kNotFound, "No such media file.");
            media::Kind kind{row->at("mime_type").get<std::string>(), std::nullopt, std::nullopt};
            if (row->at("width").is_number()) kind.width = row->at("width").get<int64_t>();
            const std::string hash = row->at("hash").get<std::string>();
            const std::string path = t.empty() ? files_.path(tenant_id, hash) : files_.variant(tenant_id, hash, kind, t);
            std::ifstream in(path, std::ios::binary);
            if (!in) throw Error(Code::kNotFound, "The media file is missing.");
            CachedAnswer out;
            out.body.assign(std::istreambuf_iterator<char>(in), {});
            out.content_type = media::output_mime(kind, t);
            out.etag = "\"" + (t.empty() ? hash : hash.substr(0, 40) + "-" + t.suffix()) + "\"";
            // An id names the same bytes for ever: cacheable as long as a cache wants. Only images render
            // inline; everything is sent with nosniff and a sandboxing policy.
            const bool inline_ok = out.content_type.rfind("image/", 0) == 0 && out.content_type.find("svg") == std::string::npos;
            out.header_lines = "ETag: " + out.etag +
                               "\r\nCache-Control: public, max-age=31536000, immutable\r\n"
                               "X-Content-Type-Options: nosniff\r\n"
                               "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; sandbox\r\n" +
                               (inline_ok ? "" : "Content-Disposition: attachment\r\n");
            return out;
          });
          send(ctx, a);
          if (a.body.size() <= (1 << 20)) cache.put(tenant_id, std::move(ck), gen, std::move(a));
        },
        {.access = Access::kPublic,
         .summary = "A media file by its URL (public: client apps put it in <img src>); ?w=&h=&fit=&format= "
                    "transform images (made once, then served from disk)",
         .tag = kTag,
         .query_params = {"w", "h", "fit", "format"}});
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
            service_.cache().changed(c.scope.tenant_id());
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
          service_.cache().changed(c.scope.tenant_id());
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
  r.add(Method::kGet, "/api/v1/cms/openapi.json",
        [this](Context& ctx) -> Task<void> {
          const db::TenantScope& scope = *ctx.tenant;
          std::string doc = co_await workers_.run([&] { return service_.openapi(scope); });
          ctx.res.json(200, std::move(doc));
          ctx.res.header("Cache-Control", "no-cache");
        },
        {.access = Access::kTenantMember,
         .scope = kRead,
         .summary = "This tenant's content API as OpenAPI 3.1: the delivery and entry routes of each content type, "
                    "with its entries' data schema (for client code generators)",
         .tag = kTag});
  const std::vector<std::string> params = {"locale",   "fields", "sort",  "populate",
                                           "q",        "filter[field]", "filter[field][op]"};
  // A repeated read is answered from the cache before any coroutine starts.
  auto from_cache = [this](Context& ctx) {
    auto hit = service_.cache().get(ctx.tenant->tenant_id(), cache_key(ctx));
    if (hit) send(ctx, *hit);
    return hit != nullptr;
  };
  r.add(Method::kGet, "/api/v1/cms/published/{type_key}", from_cache,
        [this](Context& ctx) -> Task<void> {
          DeliveryCache& cache = service_.cache();
          const std::string_view tenant = ctx.tenant->tenant_id();
          std::string ck = cache_key(ctx);
          DeliveryParams p{ctx.req.query_params()};
          const std::string key(ctx.req.param(0));
          const uint64_t gen = cache.generation(tenant);
          std::string body =
              co_await workers_.run([&] { return service_.published_list(*ctx.tenant, key, p); });
          CachedAnswer a = make_answer(std::move(body), "application/json", "no-cache");
          send(ctx, a);
          cache.put(tenant, std::move(ck), gen, std::move(a));
        },
        {.access = Access::kTenantMember,
         .scope = kRead,
         .summary = "Published entries of a content type (publishable key): filter[field][op]=, sort=, fields=, "
                    "populate=, q=, locale=; ETag and If-None-Match",
         .tag = kTag,
         .response_schema = "PublishedEntry",
         .list = true,
         .query_params = params});

  r.add(Method::kGet, "/api/v1/cms/published/{type_key}/{id}", from_cache,
        [this](Context& ctx) -> Task<void> {
          DeliveryCache& cache = service_.cache();
          const std::string_view tenant = ctx.tenant->tenant_id();
          std::string ck = cache_key(ctx);
          DeliveryParams p{ctx.req.query_params()};
          std::optional<std::string> preview = ctx.req.query_param("preview");
          if (preview && preview->empty()) preview.reset();
          const std::string key(ctx.req.param(0)), id(ctx.req.param(1));
          const uint64_t gen = cache.generation(tenant);
          std::string body =
              co_await workers_.run([&] { return service_.published_one(*ctx.tenant, key, id, p, preview); });
          CachedAnswer a = make_answer(std::move(body), "application/json", preview ? "no-store" : "no-cache");
          send(ctx, a, !preview);
          if (!preview) cache.put(tenant, std::move(ck), gen, std::move(a));  // drafts are never kept
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
  kit::add_event_schema(schemas, "CmsEvent");
  schemas["MediaUpload"] = {
      {"type", "object"},
      {"description", "multipart/form-data"},
      {"required", {"file"}},
      {"properties",
       {{"file", {{"type", "string"}, {"format", "binary"}}},
        {"alt", {{"type", "string"}, {"maxLength", 500}}},
        {"folder", {{"type", "string"}, {"maxLength", 200}}}}}};
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
