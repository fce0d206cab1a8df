// The authentication layer's one place to mint a TenantScope, after it has verified a credential
// (API key, token, password login) bound to that tenant. Private: only its friends may call it.
#pragma once
#include "db/tenant_scope.hpp"

namespace cdx::auth {

class Service;
class Authenticator;
class InProcessApi;
class AssertionAuthenticator;
class InternalRoutes;

class ScopeMinter {
  friend class AssertionAuthenticator;
  friend class InternalRoutes;
  friend class Service;
  friend class Authenticator;
  friend class InProcessApi;
  static db::TenantScope mint(std::string tenant_id) { return db::TenantScope(std::move(tenant_id)); }
};

}  // namespace cdx::auth
