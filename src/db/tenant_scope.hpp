// TenantScope: proof that the caller was authenticated into one tenant. Every tenant query takes one,
// and only the authentication layer (and the superadmin-only tenant service) can mint it.
//   db.read(scope, [&](db::Tx& tx) { tx.query("SELECT … WHERE tenant_id = $1", {scope.tenant_id()}); });
#pragma once
#include <string>

namespace cdx::auth {
class Authenticator;
class ScopeMinter;
}  // namespace cdx::auth
namespace cdx::core {
class TenantService;
}
namespace cdx::db::testing {
class TestScopes;  // db/testing.hpp, for *_test.cpp and *_pgtest.cpp only
}

namespace cdx::db {

class TenantScope {
 public:
  const std::string& tenant_id() const { return tenant_id_; }

 private:
  explicit TenantScope(std::string tenant_id) : tenant_id_(std::move(tenant_id)) {}
  friend class cdx::auth::Authenticator;
  friend class cdx::auth::ScopeMinter;
  friend class cdx::core::TenantService;
  friend class cdx::db::testing::TestScopes;
  std::string tenant_id_;
};

}  // namespace cdx::db
