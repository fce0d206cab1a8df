// The CRM resources the kit serves from their declarations (src/crm/resources.cpp).
//   kit.add(company_resource());
#pragma once
#include "kit/resource.hpp"

namespace cdx::crm {

kit::Resource company_resource();
kit::Resource contact_resource();
kit::Resource activity_resource();
// Its pipeline and stage rules, history and stage/status events are hooks of the service (Service::deal_hooks).
kit::Resource deal_resource();

}  // namespace cdx::crm
