// What other modules may ask of the CRM: how much a tenant holds (core's tenant overview). Blocking: call it
// from a worker thread. The monolith uses the in-process implementation below.
//   crm::Counts n = crm_api.counts(scope);   // n.contacts, n.deals, n.open_deals …
#pragma once
#include "common/tenant_scope.hpp"
#include "crm/model.hpp"

namespace cdx::crm {

class Api {
 public:
  virtual ~Api() = default;
  virtual Counts counts(const db::TenantScope& scope) = 0;
};

}  // namespace cdx::crm
