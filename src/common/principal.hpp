// Who is calling: the verified identity behind a request, built by the authentication layer.
//   if (ctx.principal->role == Role::kAdmin) …
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "common/tenant_scope.hpp"

namespace cdx {

enum class Role { kSuperadmin, kAdmin, kClient };
std::string_view role_name(Role role);

struct Principal {
  enum class Kind { kSuperadmin, kUser, kApiKey };
  Kind kind = Kind::kUser;
  std::string id;         // superadmin, user or API key id
  std::string name;       // username, email or key name
  Role role = Role::kClient;
  std::string tenant_id;  // empty for a SUPERADMIN
  std::vector<std::string> scopes;
  std::optional<db::TenantScope> scope;  // tenant-bound credentials carry their scope
  std::string me_json;    // the pre-rendered answer of GET /api/v1/auth/me
  int64_t expires_at = 0; // unix seconds; 0 = no expiry
  std::string session_id; // tokens: the refresh family (sid) the token belongs to
  bool publishable = false;  // a cdx_pk_ key: browser-visible, bound to the tenant's allowed origins
  bool scope_limited = false;  // an OAuth client's token: routes' declared scopes apply, as for keys

  // "*" holds everything; "<area>:write" also holds "<area>:read".
  bool has_scope(std::string_view s) const {
    for (const auto& x : scopes) {
      if (x == s || x == "*") return true;
      if (s.size() > 5 && s.substr(s.size() - 5) == ":read" && x.size() > 6 &&
          x.substr(x.size() - 6) == ":write" && x.substr(0, x.size() - 6) == s.substr(0, s.size() - 5))
        return true;
    }
    return false;
  }
};

}  // namespace cdx
