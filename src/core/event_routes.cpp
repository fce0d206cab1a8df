// GET /api/v1/events: the platform event log. The SUPERADMIN reads every tenant's (or one's, by tenant_id or
// X-Tenant-ID); a tenant's ADMIN, or a secret key holding events:read, its own tenant's only.
#include <utility>
#include "common/task.hpp"

#include "common/clock.hpp"
#include "core/module.hpp"
#include "http/pagination.hpp"
#include "http/router.hpp"
#include "kit/seq_cursor.hpp"

namespace cdx::core {

using http::Access;
using http::Context;
using http::Method;

namespace {

// type=crm.*,cms.entry.published,*: exact names, prefixes ("crm.*" or "crm."), or everything ("*").
std::vector<std::string> type_filters(const Context& ctx) {
  auto v = kit::query_text(ctx, "type", 500);
  if (!v) return {};
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= v->size()) {
    size_t end = v->find(',', start);
    if (end == std::string::npos) end = v->size();
    std::string t = v->substr(start, end - start);
    start = end + 1;
    if (t.empty()) continue;
    if (t == "*") return {};  // everything
    if (t.size() > 2 && t.ends_with(".*")) t.pop_back();
    const bool ok = std::all_of(t.begin(), t.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
    });
    if (!ok || t.front() == '.')
      throw Error::validation({{"type", "takes event types (crm.contact.created), prefixes (crm.* or crm.) or *, "
                                        "comma-separated"}});
    out.push_back(std::move(t));
    if (out.size() > 20) throw Error::validation({{"type", "takes at most 20 types"}});
  }
  return out;
}

std::optional<std::string> time_param(const Context& ctx, std::string_view name) {
  auto v = kit::query_text(ctx, name, 64);
  if (!v) return std::nullopt;
  auto t = parse_rfc3339(*v);
  if (!t) throw Error::validation({{std::string(name), "must be an RFC 3339 time (2026-12-01T00:00:00Z)"}});
  return format_rfc3339(*t);  // the stored form, so text order is time order
}

}  // namespace

void CoreModule::mount_events(http::Router& r) {
  r.add(
      Method::kGet, "/api/v1/events",
      [this](Context& ctx) -> Task<void> {
        const Principal& p = *ctx.principal;
        const http::Page page = http::parse_page(ctx.req);
        EventQuery q;
        q.limit = page.limit;
        q.before_seq = kit::seq_cursor(page, "ev");
        q.types = type_filters(ctx);
        q.since = time_param(ctx, "since");
        q.until = time_param(ctx, "until");
        const auto named = kit::query_text(ctx, "tenant_id", 100);
        if (p.kind == Principal::Kind::kSuperadmin) {
          if (ctx.tenant) q.tenant_id = std::string(ctx.tenant->tenant_id());
          if (named) {
            if (q.tenant_id && *q.tenant_id != *named)
              throw Error::validation({{"tenant_id", "names another tenant than X-Tenant-ID"}});
            q.tenant_id = *named;
          }
        } else {
          if (!ctx.tenant || p.role == Role::kClient)
            throw Error(Code::kForbidden, "The event log is for the SUPERADMIN and a tenant's ADMINs.");
          q.tenant_id = std::string(ctx.tenant->tenant_id());
          if (named && *named != *q.tenant_id)
            throw Error(Code::kForbidden, "A tenant's credential reads its own tenant's events only.");
        }
        nlohmann::json rows = co_await workers_.run([&] { return service_.list_events(q); });
        nlohmann::json next = nullptr;
        if (rows.size() > static_cast<size_t>(q.limit)) {
          rows.erase(rows.size() - 1);
          next = http::encode_cursor("ev|" + std::to_string(rows.back().at("seq").get<int64_t>()));
        }
        ctx.res.json(200, nlohmann::json{{"data", std::move(rows)}, {"next_cursor", std::move(next)}}.dump());
      },
      {.access = Access::kAuthenticated,
       .scope = "events:read",
       .summary = "The platform event log, newest first: every module's events with a global sequence. The "
                  "SUPERADMIN reads every tenant's (tenant_id= for one); a tenant's ADMIN its own. type= takes "
                  "names, prefixes (crm.*) or *, comma-separated; since= and until= (RFC 3339) bound the time",
       .tag = "events",
       .response_schema = "Event",
       .list = true,
       .query_params = {"tenant_id", "type", "since", "until"}});
}

}  // namespace cdx::core
