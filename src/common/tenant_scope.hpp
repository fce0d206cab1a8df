// TenantScope: proof that the caller was authenticated into one tenant. Every tenant query takes one, and
// only a ScopeMinter can make one; the app builds the one minter and hands it to the modules whose job is
// authentication (auth) and tenancy (core). Shared by db (queries) and http (the request's context).
//   const TenantScope scope = minter.mint(verified_tenant_id);
//   db.read(scope, [&](db::Tx& tx) { tx.query("SELECT … WHERE tenant_id = $1", {scope.tenant_id()}); });
#pragma once
#include <string>

namespace cdx::app {
struct Capabilities;  // src/app/capabilities.hpp: the only maker of a ScopeMinter
}
namespace cdx::db::testing {
class TestScopes;  // db/testing.hpp, for *_test.cpp and *_pgtest.cpp only
}

namespace cdx {

class TenantScope {
 public:
  const std::string& tenant_id() const { return tenant_id_; }
  // The scope of no tenant, for platform rows (tenants, plans), which have no tenant_id. Its tenant_id() is
  // empty: a tenant query handed it by mistake matches no row (and row-level security shows none).
  static const TenantScope& none() {
    static const TenantScope kNone{std::string()};
    return kNone;
  }

 private:
  explicit TenantScope(std::string tenant_id) : tenant_id_(std::move(tenant_id)) {}
  friend class ScopeMinter;
  friend class cdx::db::testing::TestScopes;
  std::string tenant_id_;
};

// The capability to mint scopes, for code that has verified a credential or is the operator's own.
class ScopeMinter {
 public:
  TenantScope mint(std::string tenant_id) const { return TenantScope(std::move(tenant_id)); }

 private:
  ScopeMinter() = default;
  friend struct cdx::app::Capabilities;
};

namespace db {
using TenantScope = cdx::TenantScope;
}

}  // namespace cdx
