#include "http/assertion.hpp"

#include <sodium.h>
#include <nlohmann/json.hpp>

#include <stdexcept>

#include "common/ids.hpp"

namespace cdx::http {

namespace {

constexpr std::string_view kPrefix = "v1.";
constexpr size_t kMaxTokenBytes = 8192;
constexpr size_t kBindingBytes = 16;

std::string_view kind_name(Principal::Kind k) {
  switch (k) {
    case Principal::Kind::kSuperadmin:
      return "superadmin";
    case Principal::Kind::kUser:
      return "user";
    case Principal::Kind::kApiKey:
      return "api_key";
  }
  return "user";
}

std::optional<Principal::Kind> kind_from(std::string_view s) {
  if (s == "superadmin") return Principal::Kind::kSuperadmin;
  if (s == "user") return Principal::Kind::kUser;
  if (s == "api_key") return Principal::Kind::kApiKey;
  return std::nullopt;
}

std::optional<Role> role_from(std::string_view s) {
  if (s == "SUPERADMIN") return Role::kSuperadmin;
  if (s == "ADMIN") return Role::kAdmin;
  if (s == "CLIENT") return Role::kClient;
  return std::nullopt;
}

}  // namespace

AssertionKey::AssertionKey(std::string_view secret) {
  if (secret.size() < 32) throw std::invalid_argument("the internal secret must be at least 32 bytes");
  // Derive a fixed-size key so any secret length works the same way.
  crypto_hash_sha256(key_.data(), reinterpret_cast<const unsigned char*>(secret.data()), secret.size());
  // A key of its own for the request binding, derived from the assertion key.
  std::array<unsigned char, 32> bind_key{};
  crypto_generichash(bind_key.data(), bind_key.size(), reinterpret_cast<const unsigned char*>("cdx-bind"), 8,
                     key_.data(), key_.size());
  auto keyed = std::make_shared<crypto_generichash_state>();
  crypto_generichash_init(keyed.get(), bind_key.data(), bind_key.size(), kBindingBytes);
  bind_state_ = std::move(keyed);
  sodium_memzero(bind_key.data(), bind_key.size());
}

std::string AssertionKey::sign(const Assertion& a, int64_t now) const {
  nlohmann::json j = {{"exp", now + kAssertionTtlSeconds}};
  switch (a.kind) {
    case Assertion::Kind::kAnonymous:
      j["k"] = "anonymous";
      break;
    case Assertion::Kind::kService:
      j["k"] = "service";
      j["svc"] = a.service;
      break;
    case Assertion::Kind::kPrincipal: {
      const Principal& p = a.principal;
      j["k"] = kind_name(p.kind);
      j["id"] = p.id;
      j["n"] = p.name;
      j["r"] = role_name(p.role);
      j["pt"] = p.tenant_id;
      j["s"] = p.scopes;
      if (p.expires_at) j["pexp"] = p.expires_at;
      if (!p.session_id.empty()) j["sid"] = p.session_id;
      if (p.publishable) j["pub"] = true;
      if (p.scope_limited) j["lim"] = true;
      break;
    }
  }
  if (!a.tenant_id.empty()) j["t"] = a.tenant_id;
  const std::string payload = base64url_encode(j.dump());
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256(mac, reinterpret_cast<const unsigned char*>(payload.data()), payload.size(),
                         key_.data());
  std::string out(kPrefix);
  out += payload;
  out += '.';
  out += base64url_encode({reinterpret_cast<const char*>(mac), sizeof mac});
  return out;
}

std::optional<Assertion> AssertionKey::verify(std::string_view token, int64_t now) const {
  if (token.size() > kMaxTokenBytes || token.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  token.remove_prefix(kPrefix.size());
  const size_t dot = token.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  const std::string_view payload = token.substr(0, dot);
  std::string mac;
  if (!base64url_decode(token.substr(dot + 1), mac) || mac.size() != crypto_auth_hmacsha256_BYTES)
    return std::nullopt;
  if (crypto_auth_hmacsha256_verify(reinterpret_cast<const unsigned char*>(mac.data()),
                                    reinterpret_cast<const unsigned char*>(payload.data()), payload.size(),
                                    key_.data()) != 0)
    return std::nullopt;
  std::string text;
  if (!base64url_decode(payload, text)) return std::nullopt;
  // Signed by us, so well-formed unless the secret leaked; still parsed defensively.
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  try {
    Assertion a;
    a.expires_at = j.at("exp").get<int64_t>();
    if (a.expires_at <= now) return std::nullopt;
    if (auto t = j.find("t"); t != j.end()) a.tenant_id = t->get<std::string>();
    const std::string kind = j.at("k").get<std::string>();
    if (kind == "anonymous") {
      a.kind = Assertion::Kind::kAnonymous;
    } else if (kind == "service") {
      a.kind = Assertion::Kind::kService;
      a.service = j.at("svc").get<std::string>();
    } else {
      auto k = kind_from(kind);
      auto r = role_from(j.at("r").get<std::string>());
      if (!k || !r) return std::nullopt;
      a.kind = Assertion::Kind::kPrincipal;
      Principal& p = a.principal;
      p.kind = *k;
      p.role = *r;
      p.id = j.at("id").get<std::string>();
      p.name = j.at("n").get<std::string>();
      p.tenant_id = j.at("pt").get<std::string>();
      p.scopes = j.at("s").get<std::vector<std::string>>();
      p.expires_at = j.value("pexp", int64_t{0});
      p.session_id = j.value("sid", std::string());
      p.publishable = j.value("pub", false);
      p.scope_limited = j.value("lim", false);
    }
    return a;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

namespace {

// Keyed BLAKE2b (one compression for these few bytes: a fraction of an HMAC-SHA256) over the assertion's own
// MAC, which already covers its payload, and the request's method and target.
// The keyed state is made once (the key is a block of its own): each binding costs one block.
void binding_mac(const crypto_generichash_state& keyed, std::string_view assertion, std::string_view method,
                 std::string_view target, unsigned char* mac) {
  const std::string_view tag = assertion.substr(assertion.rfind('.') + 1);
  crypto_generichash_state st = keyed;
  auto feed = [&](std::string_view s) {
    crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(s.data()), s.size());
  };
  feed(tag);
  feed("\n");
  feed(method);
  feed("\n");
  feed(target);
  crypto_generichash_final(&st, mac, kBindingBytes);
}
}  // namespace

void AssertionKey::bind_to(std::string& out, std::string_view assertion, std::string_view method,
                           std::string_view target) const {
  unsigned char mac[kBindingBytes];
  binding_mac(*bind_state_, assertion, method, target, mac);
  out += assertion;
  out += '~';
  static const char* kHex = "0123456789abcdef";
  for (unsigned char c : mac) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
}

std::string AssertionKey::bind(std::string_view assertion, std::string_view method,
                               std::string_view target) const {
  std::string out;
  out.reserve(assertion.size() + 1 + 2 * kBindingBytes);
  bind_to(out, assertion, method, target);
  return out;
}

std::string_view AssertionKey::unbind(std::string_view header, std::string_view method,
                                      std::string_view target) const {
  const size_t tilde = header.rfind('~');
  if (tilde == std::string_view::npos || header.size() > kMaxTokenBytes ||
      header.size() - tilde - 1 != 2 * kBindingBytes)
    return {};
  const std::string_view assertion = header.substr(0, tilde);
  unsigned char given[kBindingBytes];
  size_t len = 0;
  if (sodium_hex2bin(given, sizeof given, header.data() + tilde + 1, 2 * kBindingBytes, nullptr, &len,
                     nullptr) != 0 ||
      len != kBindingBytes)
    return {};
  unsigned char mac[kBindingBytes];
  binding_mac(*bind_state_, assertion, method, target, mac);
  if (sodium_memcmp(mac, given, sizeof mac) != 0) return {};
  return assertion;
}

}  // namespace cdx::http
