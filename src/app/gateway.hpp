// The constellation's gateway: the same middleware chain as the monolith (limits, CORS, credential →
// principal, tenant checks, rate limits, access log, metrics), then each module's routes are proxied to
// that module's service with the verified principal as a signed assertion. It holds no database:
// credentials and tenants come from the auth and core services, cached as in the monolith.
//   Gateway gw(config, key, workers);  gw.mount(router);  http::Server server(opts, router, metrics,
//   &gw.authenticator());
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "auth/authenticator.hpp"
#include "auth/remote.hpp"
#include "auth/remote_api.hpp"
#include "common/config.hpp"
#include "kit/module.hpp"
#include "core/remote_api.hpp"
#include "http/assertion.hpp"
#include "gateway/proxy.hpp"
#include "kit/usage_meter.hpp"
#include "http/router.hpp"
#include "http/service_client.hpp"

namespace cdx::app {

class Gateway final : private gateway::AnswerObserver {
 public:
  Gateway(const Config& config, const http::AssertionKey& key, WorkerPool& workers, WorkerPool& hashers);
  ~Gateway() override;

  // Every public and authenticated route of every module, answered by proxying to its service.
  void mount(http::Router& router);
  auth::Authenticator& authenticator() { return authenticator_; }
  gateway::Proxy& proxy() { return *proxy_; }
  const std::vector<gateway::Upstream>& upstreams() const { return upstreams_; }
  // The modules behind it, built detached (no database) only for their routes and schemas; set by mount().
  std::vector<Module*> modules() const;

  // From the maintenance thread, once a second: key uses to auth, JWKS refresh.
  void tick();
  // Sends the counted API calls to core (kept for the next try when core does not answer).
  void flush_usage();
  // The auth service's token keys are loaded: bearer tokens can be verified.
  bool keys_loaded() const { return keys_loaded_; }

 private:
  Task<void> forward(http::Context& ctx, size_t upstream);
  // Before the client sees an answer: consumes the services' internal headers, reads a key set.
  void on_head(http::Context& ctx) override;
  std::string_view assertion_for(const http::Context& ctx);

  const Config& config_;
  const http::AssertionKey& key_;
  WorkerPool& workers_;
  WorkerPool& hashers_;
  core::RemoteApi core_api_;  // before credentials_, which looks tenants up through it
  auth::RemoteApi auth_api_;
  auth::RemoteCredentials credentials_;
  kit::UsageMeter usage_;
  http::ServiceClient core_;
  auth::Authenticator authenticator_;
  std::vector<gateway::Upstream> upstreams_;
  std::unique_ptr<gateway::Proxy> proxy_;
  std::vector<std::unique_ptr<Module>> modules_;
  uint64_t ticks_ = 0;
  std::atomic<bool> keys_loaded_{false};
};

}  // namespace cdx::app
