// CRM's HTTP handlers: parse, call the service on a worker, render. Every route is for the tenant's ADMINs,
// its secret API keys holding crm:read / crm:write, and a SUPERADMIN naming the tenant (a CLIENT gets 403).
#include <boost/beast/core/string.hpp>
#include <fmt/format.h>

#include <charconv>

#include "common/validate.hpp"
#include "crm/module.hpp"
#include "http/pagination.hpp"
#include "http/router.hpp"

namespace cdx::crm {

using http::Access;
using http::Context;
using http::Method;
using nlohmann::json;

namespace {

constexpr const char* kRead = "crm:read";
constexpr const char* kWrite = "crm:write";
constexpr const char* kTag = "crm";


std::string path_id(const Context& ctx, size_t i) { return std::string(ctx.req.param(i)); }

using kit::query_text;

std::optional<std::string> query_id(const Context& ctx, std::string_view name) {
  auto v = query_text(ctx, name, 64);
  if (v && !valid_id(*v)) throw Error::validation({{std::string(name), "must be an id"}});
  return v;
}

std::optional<std::string> query_choice(const Context& ctx, std::string_view name,
                                        const std::vector<std::string>& values) {
  auto v = query_text(ctx, name, 64);
  if (v && !one_of(values, *v)) {
    std::string list;
    for (const auto& x : values) list += (list.empty() ? "" : ", ") + x;
    throw Error::validation({{std::string(name), "must be one of: " + list}});
  }
  return v;
}

std::optional<bool> query_bool(const Context& ctx, std::string_view name) {
  auto v = query_text(ctx, name, 8);
  if (!v) return std::nullopt;
  if (*v == "true") return true;
  if (*v == "false") return false;
  throw Error::validation({{std::string(name), "must be true or false"}});
}

template <class T>
json to_array(const std::vector<T>& items) {
  json out = json::array();
  for (const auto& i : items) out.push_back(to_json(i));
  return out;
}

// A sequence cursor ("<kind>|<seq>") for lists kept in insertion order.
std::optional<int64_t> seq_cursor(const http::Page& page, std::string_view kind) {
  if (!page.after) return std::nullopt;
  std::string_view s = *page.after;
  int64_t n = 0;
  if (s.substr(0, kind.size() + 1) == std::string(kind) + "|") {
    s.remove_prefix(kind.size() + 1);
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec == std::errc() && p == s.data() + s.size() && n >= 0) return n;
  }
  throw Error::validation({{"cursor", "is not a cursor returned by this list"}});
}

bool is_csv(std::string_view content_type) {
  const std::string_view media = content_type.substr(0, content_type.find(';'));
  std::string_view m = media;
  while (!m.empty() && m.back() == ' ') m.remove_suffix(1);
  return boost::beast::iequals(m, "text/csv");
}

void csv_answer(Context& ctx, std::string body, const char* filename) {
  ctx.res.set(200, "text/csv; charset=utf-8", "");
  ctx.res.body = std::move(body);
  ctx.res.header("Content-Disposition", fmt::format("attachment; filename=\"{}\"", filename));
}

// An all-or-nothing import with bad rows: 422 with the first field errors and the whole report (which
// lists every bad row; `errors` repeats only the first ones, so the answer does not hold them twice).
void import_failed(Context& ctx, const ImportReport& report) {
  constexpr size_t kListed = 100;
  std::vector<FieldError> flat;
  for (const auto& row : report.errors)
    for (const auto& e : row.errors)
      if (flat.size() < kListed) flat.push_back({fmt::format("row {}: {}", row.row, e.field), e.message});
  Error e = Error::validation(std::move(flat));
  json body = json::parse(render_problem(e, ctx.request_id));
  body["detail"] = fmt::format("{} of {} rows are invalid; nothing was imported (add ?partial=true to import the "
                               "valid rows).",
                               report.errors.size(), report.rows);
  body["report"] = to_json(report);
  ctx.res.status = 422;
  ctx.res.content_type = "application/problem+json";
  ctx.res.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
}


}  // namespace

void CrmModule::post(http::Router& r, const std::string& path, http::AsyncHandler handler, http::RouteDoc doc) {
  r.add(Method::kPost, path, std::move(handler), std::move(doc));
}

void CrmModule::mount(http::Router& r) {
  kit_.mount(r);
  mount_companies(r);
  mount_contacts(r);
  mount_deals(r);
  mount_events(r);
}

// ---- companies -----------------------------------------------------------------------------------------

Task<void> CrmModule::import_csv(Context& ctx, ImportKind kind) {
  if (!is_csv(ctx.req.header("content-type")))
    throw Error(Code::kUnsupportedMediaType, "The request body must be CSV (Content-Type: text/csv).");
  const bool partial = query_bool(ctx, "partial").value_or(false);
  const db::TenantScope& scope = *ctx.tenant;
  const Actor actor = kit::actor_of(ctx);
  // Parsing up to kImportBodyLimit bytes and rendering a report of up to kMaxImportRows rows is work too:
  // all of it runs on workers, never on the I/O thread; the rows are written, and the report stored for
  // an Idempotency-Key, in one transaction.
  const std::vector<ImportRow> rows = co_await workers_.run([&] {
    return kit::import_rows(kit::parse_csv(ctx.req.body), kind == ImportKind::kCompanies ? companies_ : contacts_);
  });
  try {
    co_await kit_.write_answer(ctx, kind == ImportKind::kCompanies ? "POST /api/v1/crm/companies/import"
                                                                  : "POST /api/v1/crm/contacts/import",
                               [&](db::Tx&) {
                                 const ImportReport report =
                                     kind == ImportKind::kCompanies
                                         ? service_.import_companies(scope, rows, partial, actor)
                                         : service_.import_contacts(scope, rows, partial, actor);
                                 ctx.res.json(200, to_json(report).dump());
                               });
  } catch (const ImportFailed& e) {
    import_failed(ctx, e.report);  // nothing was written: the transaction rolled back
  }
}

void CrmModule::mount_companies(http::Router& r) {
  const std::string base = "/api/v1/crm/companies";
  r.add(
      Method::kGet, base + "/export",
      [this](Context& ctx) -> Task<void> { co_await export_csv(ctx, companies_, "companies.csv"); },
      {.access = Access::kTenantAdmin, .scope = kRead,
       .summary = "Export companies as CSV (text/csv; the list's filters apply)", .tag = kTag,
       .query_params = {"q", "owner_id", "industry", "size", "domain"}});

  post(
      r, base + "/import",
      [this](Context& ctx) -> Task<void> { co_await import_csv(ctx, ImportKind::kCompanies); },
      {.access = Access::kTenantAdmin, .scope = kWrite,
       .summary = "Import companies from a CSV body (text/csv, header row; 100 000 rows, 32 MiB); all or nothing "
                  "unless ?partial=true",
       .tag = kTag, .response_schema = "ImportReport", .query_params = {"partial"}, .body_limit = kit::kImportBodyLimit});
}

// ---- contacts ------------------------------------------------------------------------------------------

void CrmModule::mount_contacts(http::Router& r) {
  const std::string base = "/api/v1/crm/contacts";

  r.add(
      Method::kGet, base + "/export",
      [this](Context& ctx) -> Task<void> { co_await export_csv(ctx, contacts_, "contacts.csv"); },
      {.access = Access::kTenantAdmin, .scope = kRead,
       .summary = "Export contacts as CSV (text/csv; the list's filters apply)", .tag = kTag,
       .query_params = {"q", "company_id", "owner_id", "lifecycle_stage", "tag", "email"}});

  post(
      r, base + "/import",
      [this](Context& ctx) -> Task<void> { co_await import_csv(ctx, ImportKind::kContacts); },
      {.access = Access::kTenantAdmin, .scope = kWrite,
       .summary = "Import contacts from a CSV body (text/csv, header row; 100 000 rows, 32 MiB); all or nothing "
                  "unless ?partial=true",
       .tag = kTag, .response_schema = "ImportReport", .query_params = {"partial"}, .body_limit = kit::kImportBodyLimit});

  r.add(
      Method::kGet, base + "/{id}/timeline",
      [this](Context& ctx) -> Task<void> { co_await timeline(ctx, "contact_id", "crm_db.contacts", "contact"); },
      {.access = Access::kTenantAdmin, .scope = kRead, .summary = "The contact's activities, newest first",
       .tag = kTag, .response_schema = "Activity", .list = true, .query_params = {"type", "sort", "q", "done"}});
}

// ---- deals ---------------------------------------------------------------------------------------------

void CrmModule::mount_deals(http::Router& r) {
  const std::string base = "/api/v1/crm/deals";
  r.add(
      Method::kGet, base + "/{id}/history",
      [this](Context& ctx) -> Task<void> {
        const http::Page page = http::parse_page(ctx.req);
        const int64_t after = seq_cursor(page, "seq").value_or(0);
        const db::TenantScope& scope = *ctx.tenant;
        auto items =
            co_await workers_.run([&] { return service_.deal_history(scope, path_id(ctx, 0), page.limit, after); });
        json next = nullptr;
        if (items.size() > static_cast<size_t>(page.limit)) {
          items.pop_back();
          next = http::encode_cursor("seq|" + std::to_string(items.back().seq));
        }
        ctx.res.json(200, json{{"data", to_array(items)}, {"next_cursor", std::move(next)}}.dump());
      },
      {.access = Access::kTenantAdmin, .scope = kRead,
       .summary = "The deal's history: creation, stage moves and status changes, oldest first", .tag = kTag,
       .response_schema = "DealChange", .list = true});

  r.add(
      Method::kGet, base + "/{id}/timeline",
      [this](Context& ctx) -> Task<void> { co_await timeline(ctx, "deal_id", "crm_db.deals", "deal"); },
      {.access = Access::kTenantAdmin, .scope = kRead, .summary = "The deal's activities, newest first",
       .tag = kTag, .response_schema = "Activity", .list = true, .query_params = {"type", "sort", "q", "done"}});
}

Task<void> CrmModule::export_csv(Context& ctx, const kit::Resource& r, const char* filename) {
  kit::ListQuery q = kit_.read_list(r, ctx);  // the list's filters and q; the whole selection, oldest first
  q.limit = 1000;
  q.sort = "created_at";
  q.descending = false;
  q.after.reset();
  const kit::Caller c = kit::caller_of(ctx, r);
  std::string csv = co_await workers_.run([&] {
    json all = json::array();
    db_->read(c.scope, [&](db::Tx& tx) {
      for (;;) {
        json page = kit_.list(tx, c, r, q);
        const bool more = page.size() > static_cast<size_t>(q.limit);
        if (more) page.erase(page.size() - 1);
        for (auto& row : page) all.push_back(std::move(row));
        if (!more) return;
        q.after.emplace(all.back().at("created_at").get<std::string>(), all.back().at("id").get<std::string>());
      }
    });
    return kit::export_csv(r, all);
  });
  csv_answer(ctx, std::move(csv), filename);
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

// ---- events --------------------------------------------------------------------------------------------

void CrmModule::mount_events(http::Router& r) {
  r.add(
      Method::kGet, "/api/v1/crm/events",
      [this](Context& ctx) -> Task<void> {
        const http::Page page = http::parse_page(ctx.req);
        const auto before = seq_cursor(page, "ev");
        auto type = query_text(ctx, "type", 100);
        const db::TenantScope& scope = *ctx.tenant;
        auto events = co_await workers_.run([&] { return service_.list_events(scope, type, page.limit, before); });
        json next = nullptr;
        if (events.size() > static_cast<size_t>(page.limit)) {
          events.pop_back();
          next = http::encode_cursor("ev|" + std::to_string(events.back().seq));
        }
        json items = json::array();
        for (const auto& e : events) items.push_back(db::to_json(e));
        ctx.res.json(200, json{{"data", std::move(items)}, {"next_cursor", std::move(next)}}.dump());
      },
      {.access = Access::kTenantAdmin, .scope = kRead,
       .summary = "The tenant's CRM domain events (the outbox), newest first; type filters by name or prefix "
                  "ending in '.'",
       .tag = kTag, .response_schema = "CrmEvent", .list = true, .query_params = {"type"}});
}

}  // namespace cdx::crm
