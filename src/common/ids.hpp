// Identifiers and secrets: UUIDv7 ids, URL-safe random tokens, hashing and constant-time compare.
//   std::string id = new_uuid_v7();           // "01939a3c-…"
//   std::string secret = random_token(32);     // 32 base62 characters from libsodium's CSPRNG
#pragma once
#include <string>
#include <string_view>

namespace cdx {

void init_crypto();  // sodium_init; call once at start
std::string new_uuid_v7();
std::string random_token(size_t length);          // base62, CSPRNG
void sha256(std::string_view data, unsigned char out[32]);
std::string sha256_hex(std::string_view data);
bool constant_time_equal(std::string_view a, std::string_view b);
std::string base64url_encode(std::string_view data);
bool base64url_decode(std::string_view in, std::string& out);

// An id or key safe to put in a URL path unescaped: 1–64 of A-Z a-z 0-9 '-' '_'. Anything else names
// nothing and is never sent to another service.
bool url_safe_id(std::string_view s);

// The trace id of a W3C `traceparent` header ("00-<32 hex>-<16 hex>-<2 hex>", trace id not all zeros),
// or empty when the header is absent or malformed.
std::string_view w3c_trace_id(std::string_view traceparent);

}  // namespace cdx
