// Password hashing with Argon2id (libsodium) at OWASP parameters: 19 MiB, 2 passes, 1 lane.
// Slow by design: call only from a worker thread.
//   std::string h = hash_password("s3cret");  bool ok = verify_password(h, "s3cret");
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace cdx {

std::string hash_password(std::string_view password);
bool verify_password(const std::string& hash, std::string_view password);
// Spends the time of one verification, so an unknown account answers as slowly as a wrong password.
void verify_dummy_password(std::string_view password);
// For a password a user chooses: nullopt when acceptable, else why not (length 8–256, not a common one).
std::optional<std::string> password_problem(std::string_view password);
bool is_common_password(std::string_view lowered);

}  // namespace cdx
