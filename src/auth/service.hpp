// Auth's rules between its routes and its store: sessions (login, refresh rotation with reuse
// detection, logout), tenant users and roles, self sign-up, password reset by mail, API keys, the audit
// log and signing keys. Blocking methods: run them on a worker.
//   nlohmann::json tokens = service.login("acme", "ann@acme.com", "pw", {.ip = "203.0.113.7"});
#pragma once
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "auth/api.hpp"
#include "auth/login_throttle.hpp"
#include "auth/store.hpp"
#include "auth/tokens.hpp"
#include "common/config.hpp"
#include "common/mailer.hpp"
#include "common/principal.hpp"
#include "common/worker_pool.hpp"
#include "core/api.hpp"
#include "kit/kit.hpp"

namespace cdx::auth {

inline constexpr std::string_view kAudience = "cdx";

// Facts about the request that audit entries and throttling need.
struct Caller {
  std::string ip;
  const Principal* principal = nullptr;  // null for anonymous endpoints
};

// What the authenticator caches for a key prefix.
struct ResolvedKey {
  ApiKey key;
  core::TenantInfo tenant;
};

// What the authenticator checks of a token's session, every few seconds.
struct SessionState {
  bool active = false;
};

class Service {
 public:
  Service(Store& store, core::Api& core, const Config& config, WorkerPool& hashers);
  const Config& config() const { return config_; }
  // The kit and its user and API key resources (AuthModule, once they exist).
  void attach(std::shared_ptr<db::Database> db, const kit::Kit& kit, const kit::Resource& users,
              const kit::Resource& keys);
  WorkerPool& hashers() { return hashers_; }
  // Blocking (call from a worker): an Argon2id hash computed on the hashing pool.
  std::string hash_on_pool(std::string_view password);
  // Runs fn on the hashing pool (sized to the cores) while this worker waits; rethrows what fn throws.
  template <class F>
  auto on_hashers(F fn) -> decltype(fn());
  // A user's current password, verified on the hashing pool; 422 naming current_password when wrong, 429
  // after as many failures as a login allows. Blocking.
  void check_own_password(const db::TenantScope& scope, const std::string& user_id, std::string_view password,
                          const std::string& ip);

  // Seals what is not sealed with the current key encryption key yet (see seal_signing_keys), then loads
  // the keys; generates and stores the first key on an empty database. Throws ConfigError (KekError) when
  // the configured KEK cannot open them.
  void load_signing_keys();
  // The key encryption key of the secrets auth keeps, from the configuration on first use (ConfigError
  // without one; --demo makes one).
  const KeyEncryption& keks();
  // Every signing key (retired ones too) not sealed with the current KEK — plain text stored by an earlier
  // version, or sealed with kek_previous — sealed with it. Every key is opened first, so a wrong KEK
  // changes nothing. Answers how many were sealed; SQLite's free space is scrubbed after.
  size_t seal_signing_keys();
  // A signing key's private key, opened (the kid is the associated data).
  std::string open_signing_key(const Store::StoredKey& k);
  std::shared_ptr<const KeyRing> keyring() const;
  const std::string& issuer() const { return issuer_; }
  VerifyOptions verify_options() const;

  // Sessions.
  nlohmann::json superadmin_login(std::string_view username, std::string_view password, const Caller& caller);
  // A login in three steps so the Argon2id check runs on the hashing pool and the database calls on
  // the I/O pool: begin_login (I/O) → check_password (hash) → finish_login (I/O).
  struct LoginAttempt {
    std::string account;
    std::optional<core::TenantInfo> tenant;
    std::optional<User> user;
  };
  LoginAttempt begin_login(std::string_view tenant, std::string_view email, const Caller& caller);
  static bool check_password(const LoginAttempt& attempt, std::string_view password);
  nlohmann::json finish_login(const LoginAttempt& attempt, bool password_ok, const Caller& caller);
  // finish_login() for the OAuth2 login page: the same checks, throttling and audit (details name the
  // client), but no session of its own — the client's opens when it redeems the code. Answers the user.
  User finish_client_login(const LoginAttempt& attempt, bool password_ok, const Caller& caller,
                           const std::string& client_id);
  nlohmann::json refresh(std::string_view refresh_token, const Caller& caller);
  void logout(const Principal& who, const std::optional<std::string>& refresh_token, const Caller& caller);
  // Sign-up as a CLIENT: `user` holds email, password and name? (read by bodies::sign_up()).
  nlohmann::json register_user(std::string_view tenant, nlohmann::json user, const http::Context& request);
  void forgot_password(std::string_view tenant, std::string_view email, const Caller& caller);
  void reset_password(std::string_view token, std::string_view password, const Caller& caller);

  // Users and keys made by code through the kit's resources (their rules, hooks and events): the first admin,
  // seeding, sign-up. c.request is set when a request is behind it (then the API's policies apply). Answers
  // the row with the values shown once (initial_password, key). `set` holds read-only values (created_by).
  nlohmann::json add(kit::Caller& c, const kit::Resource& r, const nlohmann::json& body,
                     const nlohmann::json& set = nlohmann::json::object());
  FirstAdmin create_first_admin(const db::TenantScope& scope, const std::string& email,
                                const std::optional<std::string>& password);
  // A tenant user without the password policy or quota (seeding); 409 when the email is taken.
  nlohmann::json create_user(const db::TenantScope& scope, const std::string& email, const std::string& name,
                             const std::string& role, const std::string& password);
  // False once the session (refresh family) is revoked: logout, reuse, password/role/status change.
  bool session_active(const std::string& tenant_id, const std::string& session_id);

  // API keys.
  std::optional<ResolvedKey> resolve_api_key(std::string_view prefix);
  // Records use in memory; flush_key_use() writes it out (a write per key per interval, not per request).
  void note_key_used(const std::string& tenant_id, const std::string& key_id);
  void flush_key_use();

  void audit(const db::TenantScope& scope, AuditEvent e, const Caller& caller);
  nlohmann::json list_audit(const db::TenantScope& scope, const AuditFilter& f) {
    return store_.list_audit(scope, f);
  }

  void purge_tenant(const db::TenantScope& scope) { store_.purge_tenant(scope); }
  Store& store() { return store_; }
  core::Api& core() { return core_; }

  // Session building blocks, shared with the OAuth2 provider.
  struct Subject {
    std::string id, role, tenant_id, name;  // tenant_id empty for a SUPERADMIN
    std::string scope;
  };
  struct Lifetimes {
    int64_t access, refresh;
  };
  Lifetimes lifetimes(const core::TenantInfo* tenant) const;
  // A new refresh family for the subject: the token answer with access_token and refresh_token.
  // `login` (a successful password login to record) is written in the session's own transaction.
  nlohmann::json open_session(const Subject& s, const Lifetimes& life,
                              const std::optional<std::string>& client_id, const AuditEvent* login = nullptr);
  std::string sign_access(const Subject& s, const std::string& session_id, int64_t ttl);

  // For credentials that name their tenant in front (OAuth2 client ids): the tenant, and the scope to look
  // the credential up in before it is verified, as refresh() does for refresh tokens. nullopt unless a
  // tenant has exactly that id (slugs do not count).
  struct CredentialTenant {
    core::TenantInfo info;
    db::TenantScope scope;
  };
  std::optional<CredentialTenant> credential_tenant(std::string_view tenant_id);

 private:
  // The checks of finish_login(): throws (and counts the failure) unless the login may proceed.
  void accept_login(const LoginAttempt& attempt, bool password_ok, const Caller& caller);

  Store& store_;
  std::shared_ptr<db::Database> db_;
  const kit::Kit* kit_ = nullptr;
  const kit::Resource* users_ = nullptr;
  const kit::Resource* keys_ = nullptr;
  core::Api& core_;
  const Config& config_;
  WorkerPool& hashers_;
  std::unique_ptr<Mailer> mailer_;
  std::string issuer_;
  LoginThrottle throttle_;
  // Reset mails: at most 3 an hour to one account and 60 an hour from one address (an office behind one
  // NAT asks for more than one person); beyond, the request is answered the same and nothing is sent.
  LoginThrottle reset_throttle_{{.per_account = 3, .per_address = 60, .window_seconds = 3600}};
  mutable std::mutex keyring_mutex_;
  std::shared_ptr<const KeyRing> keyring_;
  std::mutex keks_mutex_;
  std::unique_ptr<const KeyEncryption> keks_;
  std::mutex key_use_mutex_;
  std::unordered_map<std::string, std::vector<std::pair<std::string, std::string>>>
      key_use_;  // tenant → (key, at)
};

}  // namespace cdx::auth
