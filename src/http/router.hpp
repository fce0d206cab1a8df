// Maps (method, path) to a route: static segments and `{name}` parameters, 404 vs 405 with Allow.
// Each route declares who may call it; the server enforces that before the handler runs.
//   router.add(Method::kGet, "/api/v1/tenants/{id}", get_tenant, {.access = Access::kSuperadmin,
//              .summary = "Get a tenant", .tag = "tenants"});
#pragma once
#include <utility>  // before Asio's coroutine headers (GCC 12 + Boost 1.74)
#include "common/task.hpp"

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/types.hpp"

namespace cdx::http {

// Who may call a route. Checked by the server's Authenticator, never by `if`s in handlers.
enum class Access {
  kPublic,             // no credential
  kAuthenticated,      // any verified principal
  kSuperadmin,         // the platform operator
  kTenantMember,       // any principal acting inside a tenant (ADMIN, CLIENT, API key, SUPERADMIN naming one)
  kTenantAdmin,        // ADMIN or secret key of the tenant, or SUPERADMIN naming it
  kTenantAdminOrSelf,  // as kTenantAdmin, or a CLIENT whose own id is the route's first path parameter
  kService,  // another service of the constellation (internal API); never reachable through the gateway
};

using AsyncHandler = std::function<Task<void>(Context&)>;
using SyncHandler = std::function<void(Context&)>;
// Answers from memory when it can (true); otherwise the route's async handler runs. No coroutine frame for a
// request it answers (a cache hit).
using FastHandler = std::function<bool(Context&)>;

struct RouteDoc {
  Access access = Access::kPublic;
  std::string scope;  // an API key must hold it (or "*"); users are governed by their role
  std::string summary;
  std::string tag;
  std::string request_schema;     // components/schemas name of the JSON body, if any
  bool request_optional = false;  // the body may be omitted
  std::string form_schema;        // an application/x-www-form-urlencoded body (OAuth endpoints)
  std::string multipart_schema;   // a multipart/form-data body (uploads)
  std::string response_schema;    // components/schemas name of the success body, if any
  int success_status = 200;
  bool list = false;                      // answers {"data": [...], "next_cursor"} and takes limit/cursor
  std::vector<std::string> query_params;  // documented filters
  size_t body_limit = 0;                  // largest request body in bytes; 0 = the server's (body_limit)
  // The handler may take the body as it arrives (Request::body_stream) and write its answer in pieces
  // (Context::answer_stream): the gateway's proxied routes. Not documented in OpenAPI.
  bool stream_body = false;
  // The handler may write its answer in pieces (Context::answer_stream) while its body is read whole:
  // exports. Documented like any route.
  bool stream_answer = false;
};

struct Route {
  int id = 0;
  Method method = Method::kGet;
  std::string pattern;
  RouteDoc doc;
  AsyncHandler async_handler;
  SyncHandler sync_handler;  // used when set: no coroutine frame for trivial routes
  FastHandler fast_handler;  // tried before async_handler when set
};

struct Match {
  const Route* route = nullptr;
  bool path_found = false;  // some route has this path (→ 405 when route is null)
  std::string_view allow;   // pre-built Allow header for the path
};

class Router {
 public:
  Router();
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  const Route& add(Method method, std::string_view pattern, AsyncHandler handler, RouteDoc doc);
  // A route whose answers often come from memory: fast first, handler when fast answers false.
  const Route& add(Method method, std::string_view pattern, FastHandler fast, AsyncHandler handler,
                   RouteDoc doc);
  const Route& add_sync(Method method, std::string_view pattern, SyncHandler handler, RouteDoc doc);
  // Answers GET and HEAD for a path no route has (a single-page app's files and client-side routes); other
  // methods on such a path still get 404. Not documented in OpenAPI.
  const Route& set_fallback(SyncHandler handler, RouteDoc doc);
  const Route* fallback() const { return fallback_; }

  // Fills params with the path parameters; never allocates.
  Match match(Method method, std::string_view path, std::array<std::string_view, 4>& params) const;

  const std::vector<std::unique_ptr<Route>>& routes() const { return routes_; }

 private:
  struct Node;
  Route& insert(Method method, std::string_view pattern, RouteDoc doc);
  Match unmatched(Method method) const;
  std::unique_ptr<Node> root_;
  std::vector<std::unique_ptr<Route>> routes_;
  const Route* fallback_ = nullptr;
};

}  // namespace cdx::http
