// What only the app may make and hand out: the capability to mint tenant scopes.
//   static const ScopeMinter minter = Capabilities::scope_minter();
#pragma once
#include "common/tenant_scope.hpp"

namespace cdx::app {

struct Capabilities {
  static const ScopeMinter& scope_minter() {
    static const ScopeMinter minter;
    return minter;
  }
};

}  // namespace cdx::app
