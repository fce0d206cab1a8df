// Auth's rules between its routes and its store: logins and token answers, first admins, API keys,
// signing-key management. Blocking methods: run them on a worker.
//   nlohmann::json tokens = service.login("acme", "ann@acme.com", "pw");
#pragma once
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "auth/api.hpp"
#include "auth/store.hpp"
#include "auth/tokens.hpp"
#include "common/config.hpp"
#include "core/api.hpp"

namespace cdx::auth {

inline constexpr std::string_view kAudience = "cdx";

struct NewApiKey {
  std::string name;
  std::string type = "secret";  // secret | publishable
  std::optional<std::vector<std::string>> scopes;
  std::optional<int64_t> expires_at;  // unix seconds
  std::optional<std::string> created_by;
  std::optional<std::vector<std::string>> caller_scopes;  // set when an API key creates the key
};

// What the authenticator caches for a key prefix.
struct ResolvedKey {
  ApiKey key;
  core::TenantInfo tenant;
};

class Service {
 public:
  Service(Store& store, core::Api& core, const Config& config) : store_(store), core_(core), config_(config) {}

  void load_signing_keys();  // generates and stores the first key on an empty database
  std::shared_ptr<const KeyRing> keyring() const;
  const std::string& issuer() const { return issuer_; }
  VerifyOptions verify_options() const;

  nlohmann::json superadmin_login(std::string_view username, std::string_view password);
  nlohmann::json login(std::string_view tenant, std::string_view email, std::string_view password);

  FirstAdmin create_first_admin(const db::TenantScope& scope, const std::string& email,
                                const std::optional<std::string>& password);
  // A tenant user; 409 when the email is taken in this tenant.
  User create_user(const db::TenantScope& scope, const std::string& email, const std::string& name,
                   const std::string& role, const std::string& password);
  // The key object plus the full "key", shown once.
  nlohmann::json create_api_key(const db::TenantScope& scope, const NewApiKey& in);
  std::optional<ResolvedKey> resolve_api_key(std::string_view prefix);

  void purge_tenant(const db::TenantScope& scope) { store_.purge_tenant(scope); }
  Store& store() { return store_; }

 private:
  nlohmann::json token_answer(const TokenClaims& claims);
  Store& store_;
  core::Api& core_;
  const Config& config_;
  std::string issuer_ = config_.issuer();
  mutable std::mutex keyring_mutex_;
  std::shared_ptr<const KeyRing> keyring_;
};

}  // namespace cdx::auth
