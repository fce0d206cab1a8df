// Auth over HTTP, for the other processes of a constellation: auth::Api for core, and the gateway's
// CredentialSource (API keys, sessions and tenants looked up on the auth and core services on a cache
// miss; tokens verified locally against auth's published JWKS).
//   auth::RemoteCredentials creds(config, key);  creds.refresh_keys();  Authenticator authn(creds, workers);
#pragma once
#include <mutex>
#include <vector>

#include "auth/api.hpp"
#include "auth/authenticator.hpp"
#include "core/remote_api.hpp"

namespace cdx::auth {

class RemoteApi final : public Api {
 public:
  RemoteApi(std::string base_url, std::string caller, const gateway::AssertionKey& key)
      : client_("auth", std::move(base_url), std::move(caller), key) {}
  FirstAdmin create_first_admin(const db::TenantScope& scope, const std::string& email,
                                const std::optional<std::string>& password) override;
  nlohmann::json create_user(const db::TenantScope& scope, const std::string& email, const std::string& name,
                             const std::string& role, const std::string& password) override;
  void tenant_changed(const std::string& tenant_id) override;

 private:
  http::ServiceClient client_;
};

class RemoteCredentials final : public CredentialSource {
 public:
  RemoteCredentials(std::string auth_url, std::string core_url, std::string issuer, const gateway::AssertionKey& key)
      : auth_("auth", std::move(auth_url), "gateway", key), core_(std::move(core_url), "gateway", key),
        issuer_(std::move(issuer)) {}

  std::optional<ResolvedKey> resolve_api_key(const std::string& prefix) override;
  bool session_active(const std::string& tenant_id, const std::string& session_id) override;
  std::optional<core::TenantInfo> find_tenant(const std::string& id_or_slug) override {
    return core_.find_tenant(id_or_slug);
  }
  void note_key_used(const std::string& tenant_id, const std::string& key_id) override;
  std::shared_ptr<const KeyRing> keyring() override;
  VerifyOptions verify_options() override;

  // Blocking, from the maintenance thread: fetch auth's JWKS (true when the key set changed) and send
  // the recorded key uses.
  bool refresh_keys();
  // Adopts a JWKS document read from auth some other way; true when the key set changed. Bad input is
  // ignored (false).
  bool update_keys(const std::string& jwks);
  void flush_key_use();

 private:
  http::ServiceClient auth_;
  core::RemoteApi core_;
  std::string issuer_;
  std::mutex mutex_;
  std::shared_ptr<const KeyRing> keyring_;
  std::string jwks_;      // canonical text of the key set in use
  std::string raw_jwks_;  // the last document seen, as received
  std::vector<std::pair<std::string, std::string>> key_uses_;  // tenant id, key id
};

}  // namespace cdx::auth
