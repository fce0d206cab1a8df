// The module contract: a module owns one database schema, its migrations and its routes. The binary is a
// list of modules; the monolith and a single service differ only in that list.
//   class CrmModule : public Module { std::string_view name() const override { return "crm"; } … };
#pragma once
#include <nlohmann/json.hpp>

#include <memory>
#include <string_view>
#include <vector>

#include "db/database.hpp"

namespace cdx::http {
class Router;
}

namespace cdx {

class Module {
 public:
  virtual ~Module() = default;
  virtual std::string_view name() const = 0;
  virtual db::Database& database() = 0;
  virtual std::vector<db::Migration> migrations() const = 0;
  // Called after migrations, before serving (blocking work allowed: seeding, key generation).
  virtual void start() {}
  // Called when a server starts serving (not for commands that only migrate or seed): starts the module's
  // own threads. stop() ends them when the server stops, before the modules are destroyed.
  virtual void start_background() {}
  virtual void stop() {}
  // Called about once a second from a background thread (flushes, expiry); blocking work allowed.
  virtual void tick() {}
  virtual void mount(http::Router& router) = 0;
  // The module's internal API for the other services of a constellation (Access::kService routes under
  // /internal/v1); never mounted in the monolith, never reachable through the gateway.
  virtual void mount_internal(http::Router&) {}
  // Blocking; run on a worker. Throws when the module cannot serve.
  virtual void check_health() { database().ping(); }
  // Deletes every row the tenant owns in this module. Blocking.
  virtual void purge_tenant(const db::TenantScope& scope) = 0;
  // The database whose outbox the platform's relay drains (nullptr: the module writes no events).
  virtual std::shared_ptr<db::Database> outbox_database() { return nullptr; }
  // Work a stop interrupted that must be finished before serving (a CSV import whose answer committed but
  // whose rows are not all written): the tenants it concerns, and finishing it in one of them. The platform
  // calls both at start, with the scopes it mints. A module whose kit has csv() resources forwards them to
  // Kit::interrupted_imports and Kit::finish_imports. Blocking.
  virtual std::vector<std::string> interrupted_tenants() { return {}; }
  virtual void finish_interrupted(const db::TenantScope&) {}
  // What the tenant overview counts of one tenant, recounted from the module's own rows (`cdx admin
  // rebuild-aggregates`): numbers by counter name ({"contacts": 12}; names in core/aggregates.hpp), and the
  // CRM's "deals": [{"id", "status", "amount", "currency", "closed_at"}]. A module that counts nothing
  // answers {}. Blocking.
  virtual nlohmann::json aggregate_counts(const db::TenantScope&) { return nlohmann::json::object(); }
  // Sample data for `cdx serve --demo`, inside the demo tenant. Blocking.
  virtual void seed_demo(const db::TenantScope&) {}
  // The module's components/schemas for /openapi.json.
  virtual void add_openapi_schemas(nlohmann::json&) const {}
};

}  // namespace cdx
