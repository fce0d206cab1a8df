#include "common/password.hpp"

#include <sodium.h>

#include <charconv>
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

namespace {
// Parameters a stored hash may ask for: ours, with room for later increases. A hash that asks for more
// (a corrupted row, an imported one) fails instead of allocating gigabytes or running for minutes.
constexpr unsigned long kMaxMemoryKiB = 256 * 1024;
constexpr unsigned long kMaxPasses = 16;
constexpr unsigned long kMaxLanes = 8;

bool affordable(std::string_view hash) {
  constexpr std::string_view kPrefix = "$argon2id$v=19$";
  if (hash.substr(0, kPrefix.size()) != kPrefix) return false;
  std::string_view params = hash.substr(kPrefix.size());
  params = params.substr(0, params.find('$'));
  unsigned long m = 0, t = 0, p = 0;
  for (auto [key, out] : {std::pair{"m=", &m}, std::pair{"t=", &t}, std::pair{"p=", &p}}) {
    if (params.substr(0, 2) != key) return false;
    const char* end = params.data() + params.size();
    auto [next, ec] = std::from_chars(params.data() + 2, end, *out);
    if (ec != std::errc()) return false;
    params.remove_prefix(static_cast<size_t>(next - params.data()));
    if (!params.empty() && params.front() == ',') params.remove_prefix(1);
  }
  return params.empty() && m <= kMaxMemoryKiB && t <= kMaxPasses && p <= kMaxLanes;
}
}  // namespace

bool verify_password(const std::string& hash, std::string_view password) {
  if (!affordable(hash)) return false;
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
