#include "auth/internal_routes.hpp"

#include <utility>
#include "common/task.hpp"

#include "auth/module.hpp"
#include "auth/scope_minter.hpp"
#include "common/ids.hpp"
#include "core/api.hpp"
#include "kit/kit.hpp"

namespace cdx::auth {

using http::Access;
using http::Context;
using http::Method;

namespace {

const http::RouteDoc kInternal{.access = Access::kService, .tag = "internal"};

std::string tenant_param(const Context& ctx) {
  std::string id(ctx.req.param(0));
  if (!url_safe_id(id)) throw Error(Code::kNotFound, "No such tenant.");
  return id;
}

}  // namespace

void InternalRoutes::mount(http::Router& r, AuthModule& auth, WorkerPool& workers) {
  Service& service = auth.service();
  r.add(
      Method::kGet, "/internal/v1/api-keys/{prefix}",
      [&service, &workers](Context& ctx) -> Task<void> {
        std::string prefix(ctx.req.param(0));
        auto resolved = co_await workers.run([&] { return service.resolve_api_key(prefix); });
        if (!resolved) throw Error(Code::kNotFound, "No such API key.");
        const ApiKey& k = resolved->key;
        nlohmann::json key = {
            {"id", k.id},         {"tenant_id", k.tenant_id},
            {"name", k.name},     {"type", k.type},
            {"prefix", k.prefix}, {"key_hash", k.key_hash},
            {"scopes", k.scopes}, {"expires_at", k.expires_at ? nlohmann::json(*k.expires_at) : nullptr}};
        ctx.res.json(200, nlohmann::json{{"key", key}, {"tenant", core::to_json(resolved->tenant)}}.dump());
      },
      kInternal);
  r.add(
      Method::kGet, "/internal/v1/sessions/{id}",
      [&service, &workers](Context& ctx) -> Task<void> {
        std::string sid(ctx.req.param(0));
        std::string tenant = ctx.req.query_param("tenant_id").value_or("");
        const bool active = co_await workers.run([&] { return service.session_active(tenant, sid); });
        ctx.res.json(200, nlohmann::json{{"active", active}}.dump());
      },
      kInternal);
  r.add_sync(
      Method::kPost, "/internal/v1/api-keys/used",
      [&service](Context& ctx) {
        const nlohmann::json j = nlohmann::json::parse(ctx.req.body, nullptr, false);
        if (!j.is_object() || !j.contains("uses") || !j["uses"].is_array())
          throw Error(Code::kInvalidRequest, "Expected {\"uses\": [{\"tenant_id\", \"key_id\"}]}.");
        const auto text = [](const nlohmann::json& u, const char* name) -> std::string {
          const auto it = u.find(name);
          return it != u.end() && it->is_string() ? it->get<std::string>() : std::string();
        };
        for (const auto& u : j["uses"]) {
          if (!u.is_object()) continue;
          const std::string tenant = text(u, "tenant_id"), key = text(u, "key_id");
          if (!tenant.empty() && !key.empty())
            service.note_key_used(tenant, key);  // in memory, flushed later
        }
        ctx.res.no_content();
      },
      kInternal);
  r.add(
      Method::kPost, "/internal/v1/tenants/{id}/first-admin",
      [&service, &workers](Context& ctx) -> Task<void> {
        const db::TenantScope scope = ScopeMinter::mint(tenant_param(ctx));
        const auto in = kit::read_body(bodies::first_admin(), ctx.req.body, kit::Mode::kCreate);
        const std::string email = in.at("email").get<std::string>();
        const auto password = in.contains("password") && in["password"].is_string()
                                  ? std::optional(in["password"].get<std::string>())
                                  : std::nullopt;
        auto out = co_await workers.run([&] { return service.create_first_admin(scope, email, password); });
        ctx.res.json(201, nlohmann::json{{"admin", out.admin}, {"api_key", out.api_key}}.dump());
      },
      kInternal);
  r.add(
      Method::kPost, "/internal/v1/tenants/{id}/users",
      [&service, &workers](Context& ctx) -> Task<void> {
        const db::TenantScope scope = ScopeMinter::mint(tenant_param(ctx));
        const auto in = kit::read_body(bodies::seed_user(), ctx.req.body, kit::Mode::kCreate);
        const auto text = [&](const char* f) {
          auto it = in.find(f);
          return it != in.end() && it->is_string() ? it->get<std::string>() : std::string();
        };
        const std::string email = text("email"), name = text("name"), role = text("role"),
                          password = text("password");
        auto user =
            co_await workers.run([&] { return service.create_user(scope, email, name, role, password); });
        ctx.res.json(201, user.dump());
      },
      kInternal);
  r.add_sync(
      Method::kPost, "/internal/v1/invalidate",
      [&auth](Context& ctx) {
        auth.authenticator().invalidate(ctx);
        ctx.res.no_content();
      },
      kInternal);
}

void InternalRoutes::mount_purge(http::Router& r, Module& module, WorkerPool& workers) {
  r.add(
      Method::kDelete, "/internal/v1/tenants/{id}/data",
      [&module, &workers](Context& ctx) -> Task<void> {
        const db::TenantScope scope = ScopeMinter::mint(tenant_param(ctx));
        co_await workers.run([&] { module.purge_tenant(scope); });
        ctx.res.no_content();
      },
      kInternal);
}

}  // namespace cdx::auth
