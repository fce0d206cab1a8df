// The gateway's CredentialSource in a constellation: API keys and sessions looked up on the auth service
// on a cache miss, tenants through core's API; tokens verified locally against auth's published JWKS.
//   auth::RemoteCredentials creds(auth_url, core_api, issuer, key);  creds.refresh_keys();
#pragma once
#include <mutex>
#include <vector>

#include "auth/authenticator.hpp"
#include "core/api.hpp"
#include "http/service_client.hpp"

namespace cdx::auth {

class RemoteCredentials final : public CredentialSource {
 public:
  RemoteCredentials(std::string auth_url, core::Api& core, std::string issuer, const http::AssertionKey& key)
      : auth_("auth", std::move(auth_url), "gateway", key), core_(core), issuer_(std::move(issuer)) {}

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
  core::Api& core_;
  std::string issuer_;
  std::mutex mutex_;
  std::shared_ptr<const KeyRing> keyring_;
  std::string jwks_;      // canonical text of the key set in use
  std::string raw_jwks_;  // the last document seen, as received
  std::vector<std::pair<std::string, std::string>> key_uses_;  // tenant id, key id
};

}  // namespace cdx::auth
