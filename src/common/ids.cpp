#include "common/ids.hpp"

#include <sodium.h>

#include <chrono>
#include <stdexcept>

namespace cdx {

void init_crypto() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
}

std::string new_uuid_v7() {
  unsigned char b[16];
  randombytes_buf(b, sizeof b);
  const uint64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  b[6] = static_cast<unsigned char>(0x70 | (b[6] & 0x0f));
  b[8] = static_cast<unsigned char>(0x80 | (b[8] & 0x3f));
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 15]);
  }
  return out;
}

std::string random_token(size_t length) {
  static const char kAlphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string out;
  out.reserve(length);
  while (out.size() < length) out.push_back(kAlphabet[randombytes_uniform(62)]);
  return out;
}

// libsodium's SHA-256: no provider lookup, no lock, no allocation (OpenSSL 3's one-shot SHA256 has all three).
void sha256(std::string_view data, unsigned char out[32]) {
  crypto_hash_sha256(out, reinterpret_cast<const unsigned char*>(data.data()), data.size());
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  sha256(data, digest);
  static const char* kHex = "0123456789abcdef";
  std::string out(2 * crypto_hash_sha256_BYTES, '0');
  for (size_t i = 0; i < crypto_hash_sha256_BYTES; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 15];
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string base64url_encode(std::string_view data) {
  std::string out(sodium_base64_encoded_len(data.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(data.data()), data.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.size() - 1);  // drop the terminating NUL
  return out;
}

bool base64url_decode(std::string_view in, std::string& out) {
  // libsodium reads the byte 0xff as a digit (it compares a signed char), so a token with 0xff inserted
  // could decode to the same bytes: only the url-safe alphabet gets through.
  for (const char c : in)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  out.resize(in.size() * 3 / 4 + 3);
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), in.data(), in.size(), nullptr,
                        &len, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      end != in.data() + in.size()) {
    return false;
  }
  out.resize(len);
  return true;
}

bool url_safe_id(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  return true;
}

std::string_view w3c_trace_id(std::string_view tp) {
  auto hex = [](std::string_view h) {
    for (char c : h)
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
  };
  if (tp.size() != 55 || tp.substr(0, 3) != "00-" || tp[35] != '-' || tp[52] != '-') return {};
  const std::string_view trace = tp.substr(3, 32);
  if (!hex(trace) || !hex(tp.substr(36, 16)) || !hex(tp.substr(53, 2)) ||
      trace == std::string_view("00000000000000000000000000000000"))
    return {};
  return trace;
}

}  // namespace cdx
