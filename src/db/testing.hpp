// Test-only: mints TenantScopes without authentication. Include from *_test.cpp / *_pgtest.cpp only.
//   auto scope = db::testing::TestScopes::mint("tenant-a");
#pragma once
#include "common/tenant_scope.hpp"

namespace cdx::db::testing {

class TestScopes {
 public:
  static TenantScope mint(std::string tenant_id) { return TenantScope(std::move(tenant_id)); }
};

}  // namespace cdx::db::testing
