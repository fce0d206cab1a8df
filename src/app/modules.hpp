// The module registry: the one table of the platform's modules. Wiring, purge, the service registry, the
// gateway's routes, `cdx up`'s children, ports, OpenAPI and demo data all walk it; a new module is a folder
// and one line in modules.cpp.
//   for (const ModuleSpec& m : modules()) children.push_back({m.name, base + m.port_offset});
//   std::unique_ptr<Module> crm = find_module("crm")->make(deps);
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.hpp"
#include "common/worker_pool.hpp"
#include "kit/module.hpp"

namespace cdx::auth {
class Api;
}
namespace cdx::core {
class Api;
}

namespace cdx::app {

// What a module's factory may use. The APIs of core and auth are in-process or HTTP clients, as the
// topology decides; in the constellation's gateway the database is detached (routes only).
struct ModuleDeps {
  const Config& config;
  std::shared_ptr<db::Database> db;
  WorkerPool& workers;
  WorkerPool& hashers;
  auth::Api& auth;
  core::Api& core;
  std::function<void(const db::TenantScope&)> purge;  // core: purge a deleted tenant everywhere
  const ScopeMinter& minter;  // core and auth (they verify and create tenancy); cms (its scheduler acts in the tenant that scheduled)
};

struct ModuleSpec {
  std::string_view name;    // "crm": its paths /api/v1/crm/…, its service name, --module crm
  int port_offset;          // constellation port: --port-base + offset
  std::string_view schema;  // "crm_db"
  bool plan_gated;          // its routes answer only tenants whose plan lists it
  std::function<std::unique_ptr<Module>(ModuleDeps&)> make;
};

// In start order (core first: the others look tenants up in it).
const std::vector<ModuleSpec>& modules();
const ModuleSpec* find_module(std::string_view name);

// The gateway (offset 0) and every module: what `--module` accepts.
std::vector<std::string> service_names();
int service_port_offset(std::string_view name);  // -1 when not a service
std::vector<std::string> plan_gated_modules();
std::string service_url(const Config& config, std::string_view name);

}  // namespace cdx::app
