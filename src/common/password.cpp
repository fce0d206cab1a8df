#include "common/password.hpp"

#include <sodium.h>

#include <stdexcept>

namespace cdx {

namespace {
constexpr unsigned long long kOpsLimit = 2;
constexpr size_t kMemLimit = 19u * 1024 * 1024;
}  // namespace

std::string hash_password(std::string_view password) {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), kOpsLimit, kMemLimit,
                            crypto_pwhash_ALG_ARGON2ID13) != 0)
    throw std::runtime_error("password hashing ran out of memory");
  return out;
}

bool verify_password(const std::string& hash, std::string_view password) {
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

void verify_dummy_password(std::string_view password) {
  static const std::string kDummy = hash_password("cdx-dummy-password-for-timing");
  (void)verify_password(kDummy, password);
}

std::optional<std::string> password_problem(std::string_view password) {
  if (password.size() < 8) return "must be at least 8 characters long";
  if (password.size() > 256) return "must be at most 256 characters long";
  std::string lowered(password);
  for (auto& c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (is_common_password(lowered)) return "is one of the most common passwords; choose another";
  return std::nullopt;
}

}  // namespace cdx
