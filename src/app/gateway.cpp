#include "app/gateway.hpp"

#include <sodium.h>

#include <unordered_map>

#include "app/capabilities.hpp"
#include "app/modules.hpp"
#include "common/clock.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"

namespace cdx::app {

namespace {

constexpr int64_t kAssertionRefreshSeconds = http::kAssertionTtlSeconds / 2;

// Trace and span ids need uniqueness, not secrecy: a per-thread generator seeded once from libsodium
// saves two getrandom system calls per request.
uint64_t next_random() {
  thread_local uint64_t state = [] {
    uint64_t seed;
    randombytes_buf(&seed, sizeof seed);
    return seed;
  }();
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);  // splitmix64
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void append_hex(std::string& out, uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4) out += kHex[(v >> shift) & 15];
}

// W3C Trace Context: keep the caller's trace id (a new span of it), or start a trace.
void append_traceparent(std::string& out, std::string_view given) {
  out += "traceparent: 00-";
  if (const std::string_view trace = w3c_trace_id(given); !trace.empty()) {
    out += trace;
    out += '-';
    append_hex(out, next_random() | 1);
    out += '-';
    out += given.substr(53, 2);
  } else {
    append_hex(out, next_random() | 1);
    append_hex(out, next_random());
    out += '-';
    append_hex(out, next_random() | 1);
    out += "-01";
  }
  out += "\r\n";
}

// Removes an internal header the upstream set for the gateway; true when it was there.
bool take_internal_header(std::string& lines, std::string_view name) {
  size_t pos = 0;
  while (pos < lines.size()) {
    const size_t end = lines.find("\r\n", pos);
    const size_t stop = end == std::string::npos ? lines.size() : end + 2;
    if (stop - pos > name.size() && lines[pos + name.size()] == ':' &&
        boost::beast::iequals(std::string_view(lines).substr(pos, name.size()), name)) {
      lines.erase(pos, stop - pos);
      return true;
    }
    pos = stop;
  }
  return false;
}

}  // namespace

Gateway::Gateway(const Config& config, const http::AssertionKey& key, WorkerPool& workers,
                 WorkerPool& hashers)
    : config_(config),
      key_(key),
      workers_(workers),
      hashers_(hashers),
      core_api_(service_url(config, "core"), "gateway", key),
      auth_api_(service_url(config, "auth"), "gateway", key),
      credentials_(service_url(config, "auth"), core_api_, config.issuer(), key),
      core_("core", service_url(config, "core"), "gateway", key),
      authenticator_(credentials_, workers) {
  authenticator_.set_usage_meter(&usage_);
  authenticator_.set_plan_gated(plan_gated_modules());
  for (const ModuleSpec& m : app::modules())
    upstreams_.push_back(
        {std::string(m.name), config.host, static_cast<uint16_t>(config.port_base + m.port_offset)});
  proxy_ = std::make_unique<gateway::Proxy>(upstreams_);
}

Gateway::~Gateway() = default;

std::vector<Module*> Gateway::modules() const {
  std::vector<Module*> out;
  for (const auto& m : modules_) out.push_back(m.get());
  return out;
}

void Gateway::mount(http::Router& router) {
  // The modules are built only to learn their routes and declarations; their handlers never run here.
  for (const ModuleSpec& spec : app::modules()) {
    ModuleDeps deps{config_,
                    db::make_detached_database(std::string(spec.schema)),
                    workers_,
                    hashers_,
                    auth_api_,
                    core_api_,
                    [](const db::TenantScope&) {},
                    Capabilities::scope_minter()};
    modules_.push_back(spec.make(deps));
  }
  for (size_t i = 0; i < modules_.size(); ++i) {
    http::Router scratch;
    modules_[i]->mount(scratch);
    for (const auto& route : scratch.routes()) {
      if (route->doc.access == http::Access::kService) continue;
      http::RouteDoc doc = route->doc;
      doc.stream_body = true;  // bodies pass through as they arrive, both ways
      router.add(
          route->method, route->pattern, [this, i](http::Context& ctx) { return forward(ctx, i); },
          std::move(doc));
    }
  }
}

std::string_view Gateway::assertion_for(const http::Context& ctx) {
  struct Cached {
    std::weak_ptr<const Principal> principal;
    std::string tenant_id;
    std::string value;
    int64_t refresh_at = 0;
  };
  thread_local std::unordered_map<const Principal*, Cached> by_principal;
  thread_local Cached anonymous;
  const int64_t now = Clock::unix_seconds();
  const std::string_view tenant = ctx.tenant ? std::string_view(ctx.tenant->tenant_id()) : std::string_view();
  if (!ctx.principal) {
    if (anonymous.refresh_at <= now) {
      anonymous.value = key_.sign({}, now);
      anonymous.refresh_at = now + kAssertionRefreshSeconds;
    }
    return anonymous.value;
  }
  Cached& c = by_principal[ctx.principal.get()];
  if (c.refresh_at > now && c.tenant_id == tenant && c.principal.lock() == ctx.principal) return c.value;
  if (by_principal.size() > 10'000) {  // bounded: principals come and go with the credential caches
    by_principal.clear();
    return assertion_for(ctx);
  }
  http::Assertion a;
  a.kind = http::Assertion::Kind::kPrincipal;
  a.principal = *ctx.principal;
  a.principal.scope.reset();
  a.principal.me_json.clear();
  a.tenant_id = tenant;
  c.principal = ctx.principal;
  c.tenant_id = tenant;
  c.value = key_.sign(a, now);
  c.refresh_at = now + kAssertionRefreshSeconds;
  return c.value;
}

// Not a coroutine: the proxy's frame is the only one per request. The proxy copies `extra` before it
// first suspends, so the per-thread buffer is free again for the next request.
Task<void> Gateway::forward(http::Context& ctx, size_t upstream) {
  thread_local std::string extra;
  extra.clear();
  extra += http::kAssertionHeader;
  extra += ": ";
  key_.bind_to(extra, assertion_for(ctx), http::method_name(ctx.req.method), ctx.req.target);
  extra += "\r\nX-Request-ID: ";
  extra += ctx.request_id;
  extra += "\r\nX-Forwarded-For: ";
  extra += ctx.req.remote;
  extra += "\r\n";
  append_traceparent(extra, ctx.req.header("traceparent"));
  return proxy_->forward(ctx, upstream, extra, this);
}

void Gateway::on_head(http::Context& ctx) {
  // Credentials or tenants changed behind us: drop the caches before the client sees the answer, so the
  // change holds from its next request, as in the monolith.
  if (take_internal_header(ctx.res.header_lines, http::kInvalidateHeader)) authenticator_.invalidate();
  // A key set read through the gateway is the freshest there is: verify with it from now on.
  if (ctx.res.status == 200 && !ctx.res.body.empty() && ctx.req.path == "/.well-known/jwks.json" &&
      credentials_.update_keys(ctx.res.body))
    authenticator_.invalidate();
}

void Gateway::tick() {
  ++ticks_;
  try {
    {  // every second: a rotated or retired key is honoured within about a second of auth having it
      if (credentials_.refresh_keys() && keys_loaded_) authenticator_.invalidate();
      keys_loaded_ = true;
    }
  } catch (const std::exception& e) {
    if (ticks_ % 10 == 1)
      log::warn("cannot load the token keys from the auth service", {{"error", e.what()}});
  }
  try {
    credentials_.flush_key_use();
  } catch (const std::exception& e) {
    log::warn("cannot send API key use to the auth service", {{"error", e.what()}});
  }
  if (ticks_ % 2 == 0) flush_usage();
}

void Gateway::flush_usage() {
  auto rows = usage_.drain();
  if (rows.empty()) return;
  nlohmann::json body = {{"usage", nlohmann::json::array()}};
  for (const auto& u : rows)
    body["usage"].push_back(
        {{"tenant_id", u.tenant_id}, {"key_id", u.key_id}, {"day", u.day}, {"calls", u.calls}});
  try {
    core_.call("POST", "/internal/v1/usage", &body);
  } catch (const std::exception& e) {
    usage_.restore(rows);
    log::warn("cannot send API usage to the core service; will retry", {{"error", e.what()}});
  }
}

}  // namespace cdx::app
