// Auth's kit resources: tenant users, API keys and OAuth2 clients as declarations, with hooks for the rules a
// declaration cannot say (password hashing before the transaction, plan quotas, the last ADMIN, scopes a key
// may grant, secrets shown once, sessions ended, the audit log); and the declared bodies of the session
// routes.
//   const kit::Resource& users = kit.add(user_resource(service, [&](http::Context& c) { auth.invalidate(c);
//   }));
#pragma once
#include <functional>
#include <string>
#include <utility>

#include "kit/resource.hpp"

namespace cdx::auth {

class Service;

using Invalidate = std::function<void(http::Context&)>;

kit::Resource user_resource(Service& service, Invalidate invalidate);
kit::Resource api_key_resource(Service& service, Invalidate invalidate);
kit::Resource oauth_client_resource(Service& service, Invalidate invalidate);
// A confidential client's new secret ("cdx_cs_…") and its SHA-256 (all that is stored).
std::pair<std::string, std::string> new_client_secret();

// Bodies of routes that are not CRUD, read with kit::read_body (never added to a kit).
namespace bodies {
const kit::Resource& superadmin_login();  // username, password
const kit::Resource& login();             // email, password, tenant?
const kit::Resource& refresh();           // refresh_token (required unless it comes as the session cookie)
const kit::Resource& logout();            // refresh_token?
const kit::Resource& sign_up();           // email, password, name?, tenant?
const kit::Resource& password_forgot();   // email, tenant?
const kit::Resource& password_reset();    // token, password
const kit::Resource& first_admin();       // email, password? (internal)
const kit::Resource& seed_user();         // email, name?, role, password (internal)
}  // namespace bodies

}  // namespace cdx::auth
