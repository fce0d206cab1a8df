// The CRM resources the kit serves from their declarations (src/crm/resources.cpp).
//   kit.add(company_resource());
#pragma once
#include "kit/resource.hpp"

namespace cdx::crm {

kit::Resource company_resource();
kit::Resource contact_resource();
kit::Resource activity_resource();

}  // namespace cdx::crm
