#include "auth/remote.hpp"

#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"

namespace cdx::auth {

std::optional<ResolvedKey> RemoteCredentials::resolve_api_key(const std::string& prefix) {
  if (!url_safe_id(prefix)) return std::nullopt;  // cdx_sk_/cdx_pk_ + base62; anything else is not looked up
  auto j = auth_.call("GET", "/internal/v1/api-keys/" + prefix, nullptr, true);
  if (!j) return std::nullopt;
  try {
    const auto& k = j->at("key");
    ResolvedKey out;
    out.key.id = k.at("id").get<std::string>();
    out.key.tenant_id = k.at("tenant_id").get<std::string>();
    out.key.name = k.at("name").get<std::string>();
    out.key.type = k.at("type").get<std::string>();
    out.key.prefix = k.at("prefix").get<std::string>();
    out.key.key_hash = k.at("key_hash").get<std::string>();
    out.key.scopes = k.at("scopes").get<std::vector<std::string>>();
    if (k.contains("expires_at") && k["expires_at"].is_number())
      out.key.expires_at = k["expires_at"].get<int64_t>();
    out.tenant = core::tenant_info_from_json(j->at("tenant"));
    return out;
  } catch (const nlohmann::json::exception&) {
    throw Error(Code::kBadGateway, "The auth service answered a malformed API key.");
  }
}

bool RemoteCredentials::session_active(const std::string& tenant_id, const std::string& session_id) {
  // A SUPERADMIN's session belongs to no tenant (empty tenant id).
  if ((!tenant_id.empty() && !url_safe_id(tenant_id)) || !url_safe_id(session_id)) return false;
  auto j = auth_.call("GET", "/internal/v1/sessions/" + session_id + "?tenant_id=" + tenant_id);
  return j->value("active", false);
}

void RemoteCredentials::note_key_used(const std::string& tenant_id, const std::string& key_id) {
  std::lock_guard lock(mutex_);
  if (key_uses_.size() < 100'000) key_uses_.emplace_back(tenant_id, key_id);
}

void RemoteCredentials::flush_key_use() {
  std::vector<std::pair<std::string, std::string>> uses;
  {
    std::lock_guard lock(mutex_);
    uses.swap(key_uses_);
  }
  if (uses.empty()) return;
  nlohmann::json body = {{"uses", nlohmann::json::array()}};
  for (const auto& [t, k] : uses) body["uses"].push_back({{"tenant_id", t}, {"key_id", k}});
  auth_.call("POST", "/internal/v1/api-keys/used", &body);
}

std::shared_ptr<const KeyRing> RemoteCredentials::keyring() {
  std::lock_guard lock(mutex_);
  if (!keyring_) throw Error(Code::kServiceUnavailable, "The token keys are not loaded yet; retry shortly.");
  return keyring_;
}

VerifyOptions RemoteCredentials::verify_options() {
  return VerifyOptions{issuer_, std::string(kAudience), Clock::unix_seconds(), 30};
}

bool RemoteCredentials::refresh_keys() {
  auto j = auth_.call("GET", "/.well-known/jwks.json");
  return update_keys(j->dump());
}

bool RemoteCredentials::update_keys(const std::string& jwks) {
  {
    std::lock_guard lock(mutex_);
    if (jwks == raw_jwks_) return false;  // the common case: the same document again, not parsed
    raw_jwks_ = jwks;
  }
  // One canonical text per key set, whatever the spacing of the document.
  const nlohmann::json j = nlohmann::json::parse(jwks, nullptr, false);
  if (!j.is_object()) return false;
  std::string canonical = j.dump();
  {
    std::lock_guard lock(mutex_);
    if (canonical == jwks_) return false;
  }
  std::shared_ptr<const KeyRing> ring;
  try {
    ring = std::make_shared<const KeyRing>(KeyRing::from_jwks(canonical));
  } catch (const std::exception&) {
    return false;
  }
  std::lock_guard lock(mutex_);
  jwks_ = std::move(canonical);
  keyring_ = std::move(ring);
  return true;
}

}  // namespace cdx::auth
