// Core's kit resources: tenants and plans, platform rows in cdx_db (no tenant_id), as declarations with
// hooks for the rules a declaration cannot say; and the bodies of core's hand-written routes.
//   const kit::Resource& tenants = kit.add(tenant_resource());   // GET/PATCH /api/v1/tenants[/{id}]
#pragma once
#include "kit/resource.hpp"

namespace cdx::core {

// GET /api/v1/tenants (filters status, plan; q over name and slug), GET and PATCH /api/v1/tenants/{id or
// slug}. Create (with the first admin) and delete (purging every module) are core's own routes.
kit::Resource tenant_resource();
// GET and POST /api/v1/plans (listed by any authenticated caller), PATCH /api/v1/plans/{id or key}.
kit::Resource plan_resource();
// The body of POST /api/v1/tenants: the tenant's fields and its first admin's email and password.
kit::Resource tenant_create_body(const kit::Resource& tenants);
// The body of POST /internal/v1/superadmins/verify.
kit::Resource superadmin_login_body();

}  // namespace cdx::core
