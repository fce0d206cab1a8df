#include "app/modules.hpp"

#include "auth/module.hpp"
#include "core/module.hpp"
#include "cms/module.hpp"
#include "crm/module.hpp"

namespace cdx::app {

const std::vector<ModuleSpec>& modules() {
  static const std::vector<ModuleSpec> kModules = {
      {"core", 1, "cdx_db", false,
       [](ModuleDeps& d) {
         return std::make_unique<core::CoreModule>(d.db, d.workers, d.auth, d.purge, d.minter, d.config);
       }},
      {"auth", 3, "auth_db", false,
       [](ModuleDeps& d) {
         return std::make_unique<auth::AuthModule>(d.db, d.workers, d.hashers, d.core, d.config, d.minter);
       }},
      {"crm", 4, "crm_db", true,
       [](ModuleDeps& d) { return std::make_unique<crm::CrmModule>(d.db, d.workers); }},
      {"cms", 5, "cms_db", true,
       [](ModuleDeps& d) { return std::make_unique<cms::CmsModule>(d.db, d.workers, d.config, d.minter, d.core);
       }},
  };
  return kModules;
}

const ModuleSpec* find_module(std::string_view name) {
  for (const auto& m : modules())
    if (m.name == name) return &m;
  return nullptr;
}

std::vector<std::string> service_names() {
  std::vector<std::string> out = {"gateway"};
  for (const auto& m : modules()) out.emplace_back(m.name);
  return out;
}

std::vector<std::string> plan_gated_modules() {
  std::vector<std::string> out;
  for (const auto& m : modules())
    if (m.plan_gated) out.emplace_back(m.name);
  return out;
}

int service_port_offset(std::string_view name) {
  if (name == "gateway") return 0;
  const ModuleSpec* m = find_module(name);
  return m ? m->port_offset : -1;
}

std::string service_url(const Config& config, std::string_view name) {
  return "http://" + config.host + ":" + std::to_string(config.port_base + service_port_offset(name));
}

}  // namespace cdx::app
