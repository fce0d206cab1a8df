// The CRM resources the kit serves from their declarations (src/crm/resources.cpp).
//   kit.add(company_resource());
#pragma once
#include "kit/resource.hpp"

namespace cdx::crm {

kit::Resource company_resource();
kit::Resource contact_resource();
kit::Resource activity_resource();
// Its pipeline and stage rules, history and stage/status events are hooks of the service
// (Service::deal_hooks).
kit::Resource deal_resource();
// Pipelines and their stages; the default pipeline, stage order and deletion are hooks of the service.
kit::Resource pipeline_resource();
kit::Resource stage_resource(const kit::Resource& pipelines);

}  // namespace cdx::crm
