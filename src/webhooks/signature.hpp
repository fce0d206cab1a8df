// Standard Webhooks signing: endpoint secrets ("whsec_" + base64 of random bytes) and the v1 signature,
// base64 of HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<body>" keyed by the secret's decoded bytes.
//   std::string secret = webhooks::new_secret();                       // shown once to the tenant
//   std::string sig = webhooks::sign(*webhooks::secret_key(secret), "msg_1", 1614265330, body);  // "v1,…"
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cdx::webhooks {

// "whsec_" followed by base64 (standard alphabet, padded) of 24 CSPRNG bytes.
std::string new_secret();
// The key bytes of a "whsec_…" secret (the base64 after the prefix); nullopt when it is not one.
std::optional<std::string> secret_key(std::string_view secret);
// "v1,<base64 HMAC-SHA256(key, id + '.' + timestamp + '.' + body)>".
std::string sign(std::string_view key, std::string_view id, int64_t timestamp, std::string_view body);

std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace cdx::webhooks
