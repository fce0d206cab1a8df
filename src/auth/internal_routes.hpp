// Auth's internal API for the other services of a constellation (key and session lookups for the
// gateway, first admins and users for core, cache invalidation), and the purge route every service
// mounts. All Access::kService: reachable only with a service assertion, never through the gateway.
//   InternalRoutes::mount(router, auth_module, workers);
#pragma once
#include "kit/module.hpp"
#include "common/worker_pool.hpp"
#include "http/router.hpp"

namespace cdx::auth {

class AuthModule;

class InternalRoutes {
 public:
  static void mount(http::Router& r, AuthModule& auth, WorkerPool& workers);
  // DELETE /internal/v1/tenants/{id}/data: the module deletes every row the tenant owns.
  static void mount_purge(http::Router& r, Module& module, WorkerPool& workers);
};

}  // namespace cdx::auth
