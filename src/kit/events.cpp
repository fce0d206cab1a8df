// A module's outbox as a read-only list: what changed in the tenant, newest first.
#include <charconv>

#include "http/pagination.hpp"
#include "kit/kit.hpp"
#include "kit/seq_cursor.hpp"

namespace cdx::kit {

using nlohmann::json;

std::optional<int64_t> seq_cursor(const http::Page& page, std::string_view kind) {
  if (!page.after) return std::nullopt;
  std::string_view s = *page.after;
  int64_t n = 0;
  if (s.size() > kind.size() && s.starts_with(kind) && s[kind.size()] == '|') {
    s.remove_prefix(kind.size() + 1);
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec == std::errc() && p == s.data() + s.size() && n >= 0) return n;
  }
  throw Error::validation({{"cursor", "is not a cursor returned by this list"}});
}

void Kit::mount_events(http::Router& router, const EventsRoute& route) const {
  router.add(
      http::Method::kGet, route.path,
      [this](http::Context& ctx) -> Task<void> {
        const http::Page page = http::parse_page(ctx.req);
        const auto before = seq_cursor(page, "ev");
        const auto type = query_text(ctx, "type", 100);
        const db::TenantScope& scope = *ctx.tenant;
        auto events = co_await workers_.run([&] {
          return db_->read(scope, [&](db::Tx& tx) { return outbox_.list(tx, scope, type, page.limit, before); });
        });
        json next = nullptr;
        if (events.size() > static_cast<size_t>(page.limit)) {
          events.pop_back();
          next = http::encode_cursor("ev|" + std::to_string(events.back().seq));
        }
        json items = json::array();
        for (const auto& e : events) items.push_back(db::to_json(e));
        ctx.res.json(200, json{{"data", std::move(items)}, {"next_cursor", std::move(next)}}.dump());
      },
      {.access = http::Access::kTenantAdmin,
       .scope = route.scope,
       .summary = route.summary + " (the outbox), newest first; type filters by name or by a prefix ending in '.'",
       .tag = route.tag,
       .response_schema = route.schema,
       .list = true,
       .query_params = {"type"}});
}

void add_event_schema(json& schemas, const std::string& name) {
  const json text = {{"type", "string"}};
  schemas[name] = {{"type", "object"},
                   {"properties",
                    {{"id", {{"type", "string"}, {"format", "uuid"}}},
                     {"type", text},
                     {"tenant_id", text},
                     {"data", {{"type", "object"}}},
                     {"created_at", {{"type", "string"}, {"format", "date-time"}}}}},
                   {"required", {"id", "type", "tenant_id", "data", "created_at"}}};
}

}  // namespace cdx::kit
