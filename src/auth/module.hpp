// The auth module: tenant users, API keys and OAuth2 clients (kit resources, resources.cpp), sessions and
// token signing in auth_db; logins, /auth/me, the OAuth2 provider and JWKS routes; and the Authenticator
// every non-public route goes through.
//   auto auth = std::make_unique<auth::AuthModule>(factory.open("auth_db"), workers, core_api, config);
#pragma once
#include <memory>

#include "auth/api.hpp"
#include "auth/authenticator.hpp"
#include "auth/oauth_service.hpp"
#include "auth/resources.hpp"
#include "auth/scope_minter.hpp"
#include "auth/service.hpp"
#include "auth/store.hpp"
#include "db/outbox.hpp"
#include "kit/idempotency.hpp"
#include "kit/kit.hpp"
#include "kit/module.hpp"

namespace cdx::auth {

// auth::Api for modules in the same process.
class InProcessApi final : public Api {
 public:
  InProcessApi(Service& service, const Authenticator& authenticator)
      : service_(service), authenticator_(authenticator) {}
  FirstAdmin create_first_admin(const db::TenantScope& scope, const std::string& email,
                                const std::optional<std::string>& password) override {
    return service_.create_first_admin(scope, email, password);
  }
  nlohmann::json create_user(const db::TenantScope& scope, const std::string& email, const std::string& name,
                             const std::string& role, const std::string& password) override {
    return service_.create_user(scope, email, name, role, password);
  }
  void tenant_changed(const std::string&) override { authenticator_.invalidate(); }

 private:
  Service& service_;
  const Authenticator& authenticator_;
};

class AuthModule final : public Module {
 public:
  AuthModule(std::shared_ptr<db::Database> db, WorkerPool& workers, WorkerPool& hashers, core::Api& core,
             const Config& config, const cdx::ScopeMinter& minter)
      : minted_(minter),
        db_(std::move(db)),
        workers_(workers),
        store_(db_),
        service_(store_, core, config, hashers),
        credentials_(service_, core),
        authenticator_(credentials_, workers),
        api_(service_, authenticator_),
        oauth_store_(db_),
        oauth_(oauth_store_, service_),
        outbox_(db_->schema()),
        idempotency_(db_),
        kit_(db_, outbox_, workers, idempotency_),
        users_(kit_.add(user_resource(service_, invalidate()))),
        keys_(kit_.add(api_key_resource(service_, invalidate()))),
        clients_(kit_.add(oauth_client_resource(service_, invalidate()))) {
    service_.attach(db_, kit_, users_, keys_);
  }

  std::string_view name() const override { return "auth"; }
  db::Database& database() override { return *db_; }
  std::vector<db::Migration> migrations() const override;
  void start() override {
    service_.load_signing_keys();
    oauth_.start();
  }
  void tick() override {
    service_.flush_key_use();
    // Keys rotated by another process (cdx admin rotate-keys, another replica): sign and verify with the
    // new set within a few seconds, and re-verify cached tokens (a retired key's tokens stop working).
    if (++ticks_ % 5 == 0 && oauth_.signing_keys_changed()) {
      service_.load_signing_keys();
      authenticator_.invalidate();
    }
  }
  void mount(http::Router& router) override;
  void mount_sessions(http::Router& router);
  void answer_tokens(http::Context& ctx, nlohmann::json out) const;
  void mount_oauth(http::Router& router);  // oauth_routes.cpp
  void purge_tenant(const db::TenantScope& scope) override {
    db_->write(scope, [&](db::Tx& tx) {
      kit_.purge_tenant(tx, scope);
      outbox_.purge_tenant(tx, scope);
    });
    idempotency_.purge_tenant(scope);
    service_.purge_tenant(scope);
    oauth_.purge_tenant(scope);
    authenticator_.invalidate();
  }

  std::shared_ptr<db::Database> outbox_database() override { return db_; }
  nlohmann::json aggregate_counts(const db::TenantScope& scope) override {
    return store_.aggregate_counts(scope);
  }
  void add_openapi_schemas(nlohmann::json& schemas) const override;
  const kit::Kit& kit() const { return kit_; }
  Api& api() { return api_; }
  Authenticator& authenticator() { return authenticator_; }
  Service& service() { return service_; }
  OAuthService& oauth() { return oauth_; }

 private:
  // Installed first: the members below mint scopes once they verify credentials.
  struct Installed {
    explicit Installed(const cdx::ScopeMinter& m) { auth::ScopeMinter::install(m); }
  } minted_;
  std::shared_ptr<db::Database> db_;
  WorkerPool& workers_;
  Store store_;
  Service service_;
  LocalCredentials credentials_;
  Authenticator authenticator_;
  InProcessApi api_;
  OAuthStore oauth_store_;
  OAuthService oauth_;
  db::Outbox outbox_;
  kit::Idempotency idempotency_;
  kit::Kit kit_;
  const kit::Resource& users_;
  const kit::Resource& keys_;
  const kit::Resource& clients_;
  uint64_t ticks_ = 0;  // tick() runs on one background thread only

  // After a change committed, credential caches drop what it changed (in every topology).
  Invalidate invalidate() {
    return [this](http::Context& ctx) { authenticator_.invalidate(ctx); };
  }
};

}  // namespace cdx::auth
