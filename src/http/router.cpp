#include "http/router.hpp"

#include <stdexcept>

namespace cdx::http {

struct Router::Node {
  std::vector<std::pair<std::string, std::unique_ptr<Node>>> statics;
  std::unique_ptr<Node> param;
  std::array<const Route*, kMethodCount> routes{};
  std::string allow;

  Node* child(std::string_view seg) const {
    for (const auto& [name, node] : statics)
      if (name == seg) return node.get();
    return nullptr;
  }
};

Router::Router() : root_(std::make_unique<Node>()) {}
Router::~Router() = default;

namespace {
// Splits "/a/b/c" into segments without allocating; returns false when done.
bool next_segment(std::string_view& rest, std::string_view& seg) {
  if (rest.empty()) return false;
  if (rest.front() == '/') rest.remove_prefix(1);
  const size_t slash = rest.find('/');
  seg = rest.substr(0, slash);
  rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  return true;
}

bool is_param(std::string_view seg) { return seg.size() >= 2 && seg.front() == '{' && seg.back() == '}'; }
}  // namespace

Route& Router::insert(Method method, std::string_view pattern, RouteDoc doc) {
  if (pattern.empty() || pattern.front() != '/') throw std::invalid_argument("route must start with '/'");
  std::string_view rest = pattern, seg;
  // Checked before any node is made: a refused pattern leaves the tree as it was (a branch of its
  // static segments would otherwise win over a parameter at match time).
  size_t nparams = 0;
  while (next_segment(rest, seg)) nparams += is_param(seg);
  if (nparams > 4) throw std::invalid_argument("too many path parameters");
  Node* node = root_.get();
  rest = pattern;
  while (next_segment(rest, seg)) {
    if (seg.empty() && rest.empty()) break;  // "/" or a trailing slash, read as match() reads paths
    if (is_param(seg)) {
      if (!node->param) node->param = std::make_unique<Node>();
      node = node->param.get();
    } else {
      Node* next = node->child(seg);
      if (!next) {
        node->statics.emplace_back(std::string(seg), std::make_unique<Node>());
        next = node->statics.back().second.get();
      }
      node = next;
    }
  }
  const auto m = static_cast<size_t>(method);
  if (node->routes[m]) throw std::invalid_argument("duplicate route " + std::string(pattern));
  auto route = std::make_unique<Route>();
  route->id = static_cast<int>(routes_.size());
  route->method = method;
  route->pattern = std::string(pattern);
  route->doc = std::move(doc);
  node->routes[m] = route.get();
  node->allow.clear();
  for (size_t i = 0; i < kMethodCount; ++i) {
    if (!node->routes[i]) continue;
    if (!node->allow.empty()) node->allow += ", ";
    node->allow += method_name(static_cast<Method>(i));
    if (static_cast<Method>(i) == Method::kGet) node->allow += ", HEAD";
  }
  if (!node->routes[static_cast<size_t>(Method::kOptions)]) node->allow += ", OPTIONS";
  routes_.push_back(std::move(route));
  return *routes_.back();
}

const Route& Router::add(Method method, std::string_view pattern, AsyncHandler handler, RouteDoc doc) {
  Route& r = insert(method, pattern, std::move(doc));
  r.async_handler = std::move(handler);
  return r;
}

const Route& Router::add(Method method, std::string_view pattern, FastHandler fast, AsyncHandler handler,
                         RouteDoc doc) {
  Route& r = insert(method, pattern, std::move(doc));
  r.fast_handler = std::move(fast);
  r.async_handler = std::move(handler);
  return r;
}

const Route& Router::add_sync(Method method, std::string_view pattern, SyncHandler handler, RouteDoc doc) {
  Route& r = insert(method, pattern, std::move(doc));
  r.sync_handler = std::move(handler);
  return r;
}

const Route& Router::set_fallback(SyncHandler handler, RouteDoc doc) {
  if (fallback_) throw std::invalid_argument("the router has a fallback already");
  auto route = std::make_unique<Route>();
  route->id = static_cast<int>(routes_.size());
  route->method = Method::kGet;
  route->pattern = "/*";
  route->doc = std::move(doc);
  route->sync_handler = std::move(handler);
  fallback_ = route.get();
  routes_.push_back(std::move(route));
  return *fallback_;
}

Match Router::unmatched(Method method) const {
  Match out;
  if (fallback_ && (method == Method::kGet || method == Method::kHead)) out.route = fallback_;
  return out;
}

Match Router::match(Method method, std::string_view path, std::array<std::string_view, 4>& params) const {
  Match out;
  const Node* node = root_.get();
  std::string_view rest = path, seg;
  size_t n = 0;
  while (next_segment(rest, seg)) {
    if (seg.empty() && rest.empty()) break;  // trailing slash
    if (const Node* next = node->child(seg)) {
      node = next;
    } else if (node->param && !seg.empty()) {
      params[n++] = seg;
      node = node->param.get();
    } else {
      return unmatched(method);
    }
  }
  if (node->allow.empty()) return unmatched(method);
  out.path_found = true;
  out.allow = node->allow;
  Method m =
      method == Method::kHead && !node->routes[static_cast<size_t>(Method::kHead)] ? Method::kGet : method;
  if (m != Method::kOther) out.route = node->routes[static_cast<size_t>(m)];
  return out;
}

}  // namespace cdx::http
