// What other modules may ask of core: tenant lookup and superadmin credentials. Blocking: call it from
// a worker thread. The monolith uses the in-process implementation; the constellation an HTTP client.
//   if (auto t = core_api.find_tenant("acme"); t && t->status == "suspended") …
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.hpp"
#include "db/outbox.hpp"

namespace cdx::core {

struct TenantInfo {
  Tenant tenant;
  Plan plan;
};

struct SuperadminIdentity {
  std::string id;
  std::string username;
};

// The JSON of a TenantInfo on core's internal API, and back (502 when malformed).
nlohmann::json to_json(const TenantInfo& info);
TenantInfo tenant_info_from_json(const nlohmann::json& j);

class Api {
 public:
  virtual ~Api() = default;
  virtual std::optional<TenantInfo> find_tenant(std::string_view id_or_slug) = 0;
  // Verifies the password (Argon2id); nullopt when the username is unknown or the password wrong.
  virtual std::optional<SuperadminIdentity> verify_superadmin(std::string_view username, std::string_view password) = 0;
  virtual std::optional<SuperadminIdentity> find_superadmin(std::string_view id) = 0;
  // Moves events of a module's outbox into the platform event log (the relay's sink); duplicates are
  // skipped. Throws when they could not be recorded: the relay keeps them for its next pass.
  virtual void record_events(const std::vector<db::OutboxEvent>& events) = 0;
};

// An outbox event on core's internal API, and back (400 when malformed).
nlohmann::json event_to_wire(const db::OutboxEvent& e);
db::OutboxEvent event_from_wire(const nlohmann::json& j);

}  // namespace cdx::core
