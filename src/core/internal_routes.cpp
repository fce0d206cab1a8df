// Core's internal API for the other services of a constellation: tenant lookup and superadmin checks.
#include <utility>
#include "common/task.hpp"

#include "common/clock.hpp"
#include "core/module.hpp"
#include "core/remote_api.hpp"
#include "http/router.hpp"

namespace cdx::core {

using http::Access;
using http::Context;
using http::Method;

void CoreModule::mount_internal(http::Router& r) {
  const http::RouteDoc doc{.access = Access::kService, .tag = "internal"};
  r.add(
      Method::kGet, "/internal/v1/tenants/{id}",
      [this](Context& ctx) -> Task<void> {
        std::string key(ctx.req.param(0));
        auto info = co_await workers_.run([&] { return service_.find_tenant(key); });
        if (!info) throw Error(Code::kNotFound, "No such tenant.");
        ctx.res.json(200, to_json(*info).dump());
      },
      doc);
  r.add(
      Method::kPost, "/internal/v1/superadmins/verify",
      [this](Context& ctx) -> Task<void> {
        const nlohmann::json in = kit::read_body(superadmin_login_body_, ctx.req.body, kit::Mode::kCreate);
        const std::string username = in.at("username").get<std::string>();
        const std::string password = in.at("password").get<std::string>();
        auto who = co_await workers_.run([&] { return service_.verify_superadmin(username, password); });
        if (!who) throw Error(Code::kNotFound, "Unknown username or wrong password.");
        ctx.res.json(200, nlohmann::json{{"id", who->id}, {"username", who->username}}.dump());
      },
      doc);
  r.add(
      Method::kPost, "/internal/v1/usage",
      [this](Context& ctx) -> Task<void> {
        const nlohmann::json j = nlohmann::json::parse(ctx.req.body, nullptr, false);
        if (!j.is_object() || !j.contains("usage") || !j["usage"].is_array())
          throw Error(Code::kInvalidRequest,
                      "Expected {\"usage\": [{\"tenant_id\", \"key_id\", \"day\", \"calls\"}]}.");
        std::vector<kit::Usage> usage;
        for (const auto& u : j["usage"]) {
          // Billing data: a row is taken only whole and plausible (a real day, a positive whole count).
          const bool ok = u.is_object() && u.contains("tenant_id") && u["tenant_id"].is_string() &&
                          u.contains("key_id") && u["key_id"].is_string() && u.contains("day") &&
                          u["day"].is_string() && u.contains("calls") && u["calls"].is_number_integer() &&
                          u["calls"].get<int64_t>() > 0;
          if (!ok) throw Error(Code::kInvalidRequest, "A usage row is malformed.");
          const std::string day = u["day"].get<std::string>();
          if (day.size() != 10 || !parse_rfc3339(day + "T00:00:00Z"))
            throw Error(Code::kInvalidRequest, "A usage row's day is not a date (YYYY-MM-DD).");
          usage.push_back({u["tenant_id"].get<std::string>(), u["key_id"].get<std::string>(), day,
                           u["calls"].get<int64_t>()});
        }
        co_await workers_.run([&] { service_.record_usage(usage); });
        ctx.res.no_content();
      },
      doc);
  r.add(
      Method::kPost, "/internal/v1/events",
      [this](Context& ctx) -> Task<void> {
        // On a worker: the body is up to 64 MiB, parsed and each payload validated (a bad event refuses the
        // whole request before anything is recorded).
        co_await workers_.run([&] {
          const nlohmann::json j = nlohmann::json::parse(ctx.req.body, nullptr, false);
          if (!j.is_object() || !j.contains("events") || !j["events"].is_array())
            throw Error(Code::kInvalidRequest, "Expected {\"events\": [...]}.");
          std::vector<db::OutboxEvent> events;
          events.reserve(j["events"].size());
          for (const auto& e : j["events"]) events.push_back(event_from_wire(e));
          service_.record_events(events);
        });
        ctx.res.no_content();
      },
      {.access = Access::kService, .tag = "internal", .body_limit = 64 << 20});
  r.add(
      Method::kGet, "/internal/v1/superadmins/{id}",
      [this](Context& ctx) -> Task<void> {
        std::string id(ctx.req.param(0));
        auto who = co_await workers_.run([&] { return service_.find_superadmin(id); });
        if (!who) throw Error(Code::kNotFound, "No such superadmin.");
        ctx.res.json(200, nlohmann::json{{"id", who->id}, {"username", who->username}}.dump());
      },
      doc);
}

}  // namespace cdx::core
