// The authentication layer's one place to mint a TenantScope, after it has verified a credential
// (API key, token, password login) bound to that tenant: the app's minter, installed by AuthModule from
// the capability the app hands it. Private: only its friends may call mint().
#pragma once
#include "common/tenant_scope.hpp"

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
  static db::TenantScope mint(std::string tenant_id) { return installed()->mint(std::move(tenant_id)); }
  static const cdx::ScopeMinter*& installed() {
    static const cdx::ScopeMinter* minter = nullptr;
    return minter;
  }

 public:
  static void install(const cdx::ScopeMinter& minter) { installed() = &minter; }
};

}  // namespace cdx::auth
