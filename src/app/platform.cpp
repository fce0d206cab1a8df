#include "app/platform.hpp"

#include <fmt/format.h>
#include <boost/asio/signal_set.hpp>
#include <utility>

#include <cmath>
#include <condition_variable>
#include <csignal>
#include <thread>

#include "app/capabilities.hpp"
#include "app/gateway.hpp"
#include "app/modules.hpp"
#include "app/openapi.hpp"
#include "auth/assertion_authenticator.hpp"
#include "auth/internal_routes.hpp"
#include "auth/module.hpp"
#include "auth/remote_api.hpp"
#include "common/clock.hpp"
#include "common/log.hpp"
#include "common/worker_pool.hpp"
#include "core/module.hpp"
#include "core/remote_api.hpp"
#include "db/outbox.hpp"
#include "http/metrics.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "http/service_client.hpp"

namespace cdx::app {

namespace {

// core and auth call each other through their api.hpp; this breaks the construction cycle.
class DeferredAuthApi final : public auth::Api {
 public:
  auth::Api* target = nullptr;
  auth::FirstAdmin create_first_admin(const db::TenantScope& scope, const std::string& email,
                                      const std::optional<std::string>& password) override {
    return target->create_first_admin(scope, email, password);
  }
  nlohmann::json create_user(const db::TenantScope& scope, const std::string& email, const std::string& name,
                             const std::string& role, const std::string& password) override {
    return target->create_user(scope, email, name, role, password);
  }
  void tenant_changed(const std::string& tenant_id) override { target->tenant_changed(tenant_id); }
};

class DeferredCoreApi final : public core::Api {
 public:
  core::Api* target = nullptr;
  std::optional<core::TenantInfo> find_tenant(std::string_view id_or_slug) override {
    return target->find_tenant(id_or_slug);
  }
  std::optional<core::SuperadminIdentity> verify_superadmin(std::string_view username,
                                                            std::string_view password) override {
    return target->verify_superadmin(username, password);
  }
  std::optional<core::SuperadminIdentity> find_superadmin(std::string_view id) override {
    return target->find_superadmin(id);
  }
  void record_events(const std::vector<db::OutboxEvent>& events) override { target->record_events(events); }
};

// The health answer is rebuilt by a background checker; readers copy it without taking the lock
// except once per update per thread.
class HealthCache {
 public:
  void publish(int status, std::string body) {
    std::lock_guard lock(mutex_);
    status_ = status;
    body_ = std::move(body);
    version_.fetch_add(1, std::memory_order_release);
  }
  void read(int& status, std::string& body) const {
    thread_local uint64_t seen = UINT64_MAX;
    thread_local int local_status = 503;
    thread_local std::string local_body;
    const uint64_t v = version_.load(std::memory_order_acquire);
    if (v != seen) {
      std::lock_guard lock(mutex_);
      local_status = status_;
      local_body = body_;
      seen = version_.load(std::memory_order_relaxed);
    }
    status = local_status;
    body.assign(local_body);
  }

 private:
  mutable std::mutex mutex_;
  std::atomic<uint64_t> version_{0};
  int status_ = 503;
  std::string body_ = R"({"status":"down","service":"cdx","checks":{}})";
};

}  // namespace

struct Platform::Impl {
  Config config;
  WorkerPool workers;  // blocking I/O
  WorkerPool hashers;  // Argon2id: CPU-bound, sized to the cores, so a login flood cannot starve I/O
  std::unique_ptr<db::ConnectionFactory> factory;
  std::unique_ptr<http::AssertionKey> key;       // constellation: signs and checks the internal assertions
  std::unique_ptr<auth::RemoteApi> remote_auth;  // the core service's way to auth
  std::unique_ptr<core::RemoteApi> remote_core;  // the auth service's way to core
  std::unique_ptr<Gateway> gateway;              // the gateway service
  DeferredAuthApi auth_api;
  DeferredCoreApi core_api;
  std::vector<std::unique_ptr<Module>> owned;  // the modules this process holds, in registry order
  std::vector<Module*> modules;
  core::CoreModule* core = nullptr;  // the two the platform itself talks to, when held
  auth::AuthModule* auth = nullptr;
  db::OutboxRelay relay;  // moves the modules' outboxes into the event log, on its own thread
  std::mutex relay_mu;
  std::condition_variable relay_cv;
  bool relay_wake = false, relay_stop = false;
  HealthCache health;
  kit::UsageMeter usage;  // the monolith's API calls per tenant and key, drained into core

  bool monolith() const { return config.module.empty(); }
  bool holds(std::string_view name) const { return monolith() || config.module == name; }

  // The pools finish their queued jobs while the modules those jobs use still exist; the I/O pool first,
  // since its jobs may wait on the hashing pool.
  ~Impl() {
    workers.stop();
    hashers.stop();
  }

  explicit Impl(Config c)
      : config(std::move(c)),
        workers(static_cast<size_t>(config.workers), static_cast<size_t>(config.worker_queue_limit)),
        hashers(static_cast<size_t>(config.hash_workers), static_cast<size_t>(config.worker_queue_limit)) {
    if (!monolith()) {
      if (config.internal_secret.empty())
        throw std::runtime_error(
            "setting 'internal_secret' (CDX_INTERNAL_SECRET) is required to serve one service "
            "of a constellation; `cdx up` sets it for its children");
      key = std::make_unique<http::AssertionKey>(config.internal_secret);
    }
    if (config.module == "gateway") {
      gateway = std::make_unique<Gateway>(config, *key, workers, hashers);
      return;  // the gateway holds no database
    }
    db::StorageConfig sc;
    sc.data_dir = config.data_dir;
    sc.database_url = config.database_url;
    sc.migration_database_url = config.migration_database_url;
    sc.pool_size = config.db_pool_size;
    for (const auto& [schema, url] : config.module_database_urls) sc.module_urls.emplace_back(schema, url);
    factory = db::make_connection_factory(sc);
    // core and auth reach each other through their api.hpp: in process (deferred, to break the
    // construction cycle) or over HTTP in a constellation.
    auth::Api* auth_for_others = &auth_api;
    core::Api* core_for_others = &core_api;
    if (!monolith()) {
      remote_auth = std::make_unique<auth::RemoteApi>(service_url(config, "auth"), config.module, *key);
      remote_core = std::make_unique<core::RemoteApi>(service_url(config, "core"), config.module, *key);
      if (!holds("auth")) auth_for_others = remote_auth.get();
      if (!holds("core")) core_for_others = remote_core.get();
    }
    for (const ModuleSpec& spec : app::modules()) {
      if (!holds(spec.name)) continue;
      ModuleDeps deps{config,
                      factory->open(std::string(spec.schema)),
                      workers,
                      hashers,
                      *auth_for_others,
                      *core_for_others,
                      [this](const db::TenantScope& scope) { purge(scope); },
                      Capabilities::scope_minter()};
      owned.push_back(spec.make(deps));
      Module* m = owned.back().get();
      modules.push_back(m);
      if (auto db = m->outbox_database()) {
        relay.add_source(db);
        db->set_commit_hook([this] { wake_relay(); });  // a commit that wrote events: move them now
      }
      if (auto* c = dynamic_cast<core::CoreModule*>(m)) core = c, core_api.target = &c->service();
      if (auto* a = dynamic_cast<auth::AuthModule*>(m)) auth = a, auth_api.target = &a->api();
    }
    if (auth) {
      auth->authenticator().set_behind_gateway(!monolith());
      auth->authenticator().set_plan_gated(plan_gated_modules());
      if (monolith()) auth->authenticator().set_usage_meter(&usage);
    }
    // Every module's events go to the platform event log in core (in process, or over core's internal API).
    relay.set_sink([core_api = core_for_others](const std::vector<db::OutboxEvent>& events) {
      core_api->record_events(events);
    });
    relay.subscribe(
        "",
        [](const db::OutboxEvent& e) {
          log::debug("domain event",
                     {{"schema", e.schema}, {"type", e.type}, {"id", e.id}, {"tenant_id", e.tenant_id}});
        },
        db::OutboxRelay::Reads::kHeaders);  // names only: the payload is not parsed for it
    if (core) {
      core->set_behind_gateway(!monolith());
      register_services();
    }
  }

  void wake_relay() {
    {
      std::lock_guard lock(relay_mu);
      relay_wake = true;
    }
    relay_cv.notify_one();
  }

  // Moves events as soon as a commit announces them, and once a second anyway (another replica's rows, a
  // retry after a failure).
  void run_relay() {
    for (;;) {
      {
        std::unique_lock lock(relay_mu);
        relay_cv.wait_for(lock, std::chrono::seconds(1), [&] { return relay_wake || relay_stop; });
        if (relay_stop) return;
        relay_wake = false;
      }
      while (relay.poll() > 0) {  // until nothing is pending (a failure is logged and retried later)
        std::lock_guard lock(relay_mu);
        if (relay_stop) return;
        relay_wake = false;
      }
    }
  }

  // The counted API calls go to core's daily table; kept for the next try when that fails.
  void flush_usage() {
    if (!monolith() || !core) return;
    auto rows = usage.drain();
    try {
      core->service().record_usage(rows);
    } catch (const std::exception& e) {
      usage.restore(rows);
      log::warn("cannot record API usage; will retry", {{"error", e.what()}});
    }
  }

  // Deleting a tenant purges its rows in every module: in process, or on each service of a constellation.
  void purge(const db::TenantScope& scope) {
    if (monolith()) {
      for (Module* m : modules) m->purge_tenant(scope);
      return;
    }
    if (core) core->purge_tenant(scope);  // core's own tenant data (its webhooks)
    for (const ModuleSpec& m : app::modules()) {
      if (m.name == "core") continue;  // the tenant row itself goes last, in core's service
      http::ServiceClient client(std::string(m.name), service_url(config, m.name), "core", *key);
      client.call("DELETE", "/internal/v1/tenants/" + scope.tenant_id() + "/data");
    }
  }

  // Core's service registry: the modules of this process checked in place, the others over HTTP.
  void register_services() {
    core::ServiceRegistry& reg = core->services();
    if (monolith()) {
      const std::string url = config.issuer();
      reg.add("gateway", url, [] { return core::Probe{true, CDX_VERSION, ""}; });
      for (Module* m : modules)
        reg.add(std::string(m->name()), url, [m] {
          m->check_health();
          return core::Probe{true, CDX_VERSION, ""};
        });
      return;
    }
    for (const std::string& name : service_names()) {
      const std::string url = service_url(config, name);
      reg.add(name, url, [url] {
        const http::HealthAnswer h = http::probe_health(url);
        return core::Probe{h.ok, h.version, h.error};
      });
    }
  }

  void check_health() {
    nlohmann::json checks = nlohmann::json::object();
    bool ok = true;
    if (gateway) {
      // The gateway's health is its services' checks (the same shape as the monolith's); a service that
      // is down makes it degraded, not down: the others still answer through it.
      bool all = true;
      for (const auto& u : gateway->upstreams()) {
        http::HealthAnswer h = http::probe_health("http://" + u.host + ":" + std::to_string(u.port),
                                                  std::chrono::milliseconds(500));
        if (h.ok && u.name == "auth" && !gateway->keys_loaded()) {
          h.ok = false;
          h.error = "token keys not loaded yet";
        }
        if (h.ok) {
          for (auto& [name, check] : h.checks.items()) checks[name] = check;
        } else {
          checks[u.name] = {{"status", "down"}, {"error", h.error}};
        }
        all = all && h.ok;
      }
      health.publish(200, nlohmann::json{{"status", all ? "ok" : "degraded"},
                                         {"service", "gateway"},
                                         {"version", CDX_VERSION},
                                         {"checks", checks}}
                              .dump());
      return;
    }
    for (Module* m : modules) {
      const auto t0 = std::chrono::steady_clock::now();
      nlohmann::json c;
      try {
        m->check_health();
        c["status"] = "ok";
      } catch (const std::exception& e) {
        ok = false;
        c["status"] = "down";
        c["error"] = e.what();
      }
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      c["latency_ms"] = std::round(ms * 100) / 100;
      checks[m->database().schema()] = c;
    }
    nlohmann::json body = {{"status", ok ? "ok" : "down"},
                           {"service", monolith() ? "cdx" : config.module},
                           {"version", CDX_VERSION},
                           {"checks", checks}};
    health.publish(ok ? 200 : 503, body.dump());
  }

  void seed_demo() {
    log::warn(
        "DEMO MODE: demo credentials are active (test/test123, john.doe@demo.com/demo123). "
        "Never run --demo in production.");
    auto& tenants = core->service();
    tenants.create_superadmin("test", "test123");
    if (!tenants.find_tenant("demo")) {
      core::NewTenant t;
      t.name = "Demo Company";
      t.slug = "demo";
      t.admin_email = "john.doe@demo.com";
      t.admin_password = "demo123";
      tenants.create_tenant(t);
      tenants.seed_user("demo", "jane.smith@demo.com", "Jane Smith", "CLIENT", "demo123");
      tenants.seed_in_tenant("demo", [&](const db::TenantScope& scope) {
        for (Module* m : modules) m->seed_demo(scope);
      });
      log::info("demo data seeded", {{"tenant", "demo"}});
    }
  }

  void mount_operations(http::Router& router, http::Metrics*& metrics_slot, const std::string*& openapi) {
    router.add_sync(http::Method::kGet, "/health",
                    [this](http::Context& ctx) {
                      ctx.res.content_type = "application/json";
                      health.read(ctx.res.status, ctx.res.body);
                    },
                    {.summary = "Liveness and dependency checks (refreshed every second)",
                     .tag = "operations",
                     .response_schema = "Health"});
    router.add_sync(http::Method::kGet, "/metrics",
                    [&metrics_slot](http::Context& ctx) {
                      ctx.res.set(200, "text/plain; version=0.0.4; charset=utf-8", metrics_slot->render());
                    },
                    {.summary = "Prometheus metrics", .tag = "operations"});
    router.add_sync(http::Method::kGet, "/openapi.json",
                    [&openapi](http::Context& ctx) { ctx.res.set(200, "application/json", *openapi); },
                    {.summary = "This OpenAPI 3.1 description", .tag = "operations"});
  }
};

Platform::Platform(Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Platform::~Platform() = default;

void Platform::migrate() {
  for (Module* m : impl_->modules) {
    m->database().migrate(m->migrations());
    log::debug("migrations applied", {{"module", m->name()}});
  }
}

void Platform::start() {
  for (Module* m : impl_->modules) m->start();
  // What a stop interrupted (a decided CSV import's rows) is finished before anything is served.
  for (Module* m : impl_->modules)
    for (const std::string& tenant : m->interrupted_tenants())
      m->finish_interrupted(Capabilities::scope_minter().mint(tenant));
  if (!impl_->core) return;
  if (!impl_->config.bootstrap_superadmin.empty()) {
    if (impl_->core->service().bootstrap_superadmin(impl_->config.bootstrap_superadmin))
      log::info("bootstrap superadmin created");
  }
  if (impl_->config.demo && impl_->monolith())
    impl_->seed_demo();  // `cdx up` seeds before its services start
}

bool Platform::create_superadmin(const std::string& username, const std::string& password) {
  return impl_->core->service().create_superadmin(username, password);
}

Platform::KeyRotation Platform::rotate_keys(bool rotate, std::optional<int64_t> retire_after) {
  auth::OAuthService& oauth = impl_->auth->oauth();
  KeyRotation out;
  if (rotate) out.new_kid = oauth.rotate_signing_key();
  out.retired = oauth.retire_signing_keys(retire_after.value_or(impl_->config.access_token_ttl + 60));
  return out;
}

std::pair<size_t, std::string> Platform::rotate_kek() {
  auth::AuthModule& auth = *impl_->auth;
  size_t n = auth.service().seal_signing_keys() + auth.oauth().seal_secrets();
  if (impl_->core) n += impl_->core->webhooks().reseal_secrets();
  return {n, auth.service().keks().id()};
}

std::pair<size_t, int64_t> Platform::rebuild_aggregates() {
  Impl& p = *impl_;
  core::Aggregates& aggregates = p.core->aggregates();
  std::map<std::string, std::vector<nlohmann::json>> reports;
  const std::vector<std::string> tenants = aggregates.store().tenant_ids();
  for (const std::string& tenant_id : tenants) {
    const db::TenantScope scope = Capabilities::scope_minter().mint(tenant_id);
    auto& list = reports[tenant_id];
    for (Module* m : p.modules)
      if (nlohmann::json counts = m->aggregate_counts(scope); !counts.empty())
        list.push_back(std::move(counts));
  }
  // The events of what was counted reach the log before the cursor moves past the log's end: none of them
  // is counted a second time. Exact with no write in flight; otherwise see docs/events.md ("Rebuild").
  while (p.relay.poll() > 0) {
  }
  return {tenants.size(), aggregates.rebuild(reports)};
}

int Platform::serve() {
  Impl& p = *impl_;
  http::Router router;
  http::Metrics* metrics_ptr = nullptr;
  const std::string* openapi_ptr = nullptr;
  const http::Chain* chain = nullptr;
  std::unique_ptr<auth::AssertionAuthenticator> assertions;
  if (p.monolith()) {
    for (Module* m : p.modules) m->mount(router);
    chain = &p.auth->authenticator().chain();
  } else if (p.gateway) {
    p.gateway->mount(router);
    chain = &p.gateway->authenticator().chain();
  } else {
    // One service behind the gateway: its routes, its internal API, and nothing without an assertion.
    for (Module* m : p.modules) {
      m->mount(router);
      m->mount_internal(router);
      if (m != p.core) auth::InternalRoutes::mount_purge(router, *m, p.workers);
    }
    if (p.auth) auth::InternalRoutes::mount(router, *p.auth, p.workers);
    // The assertions name the tenant the gateway verified, minted here as auth mints its own: a service
    // without the auth module (core, crm) has no minter installed otherwise, and minted through a null one.
    auth::ScopeMinter::install(Capabilities::scope_minter());
    assertions = std::make_unique<auth::AssertionAuthenticator>(*p.key);
    chain = &assertions->chain();
  }
  p.mount_operations(router, metrics_ptr, openapi_ptr);

  http::Metrics metrics(router);
  metrics_ptr = &metrics;
  metrics.add_collector([&p](std::string& out) {
    out +=
        "# HELP cdx_db_pool_connections Database connections by schema and state.\n"
        "# TYPE cdx_db_pool_connections gauge\n";
    for (Module* m : p.modules) {
      auto s = m->database().stats();
      out += fmt::format("cdx_db_pool_connections{{schema=\"{}\",state=\"open\"}} {}\n",
                         m->database().schema(), s.size);
      out += fmt::format("cdx_db_pool_connections{{schema=\"{}\",state=\"in_use\"}} {}\n",
                         m->database().schema(), s.in_use);
    }
    // A family's samples follow its own HELP and TYPE lines (the exposition format groups them).
    out +=
        "# HELP cdx_db_pool_waits_total Times a request waited for a free database connection, by schema.\n"
        "# TYPE cdx_db_pool_waits_total counter\n";
    for (Module* m : p.modules)
      out += fmt::format("cdx_db_pool_waits_total{{schema=\"{}\"}} {}\n", m->database().schema(),
                         m->database().stats().waits);
    out +=
        "# HELP cdx_worker_queue_depth Blocking jobs waiting for a worker.\n# TYPE cdx_worker_queue_depth "
        "gauge\n";
    out += fmt::format("cdx_worker_queue_depth{{pool=\"io\"}} {}\n", p.workers.queued());
    out += fmt::format("cdx_worker_queue_depth{{pool=\"hash\"}} {}\n", p.hashers.queued());
    out +=
        "# HELP cdx_outbox_events_total Outbox events by delivery outcome.\n# TYPE cdx_outbox_events_total "
        "counter\n";
    out += fmt::format("cdx_outbox_events_total{{outcome=\"delivered\"}} {}\n", p.relay.delivered_total());
    out += fmt::format("cdx_outbox_events_total{{outcome=\"failed\"}} {}\n", p.relay.failed_total());
  });
  if (p.core)
    metrics.add_collector([&p](std::string& out) {
      // From what the subscribers' threads last saw: no database read on the I/O thread.
      const auto stats = p.core->feed().stats();
      out +=
          "# HELP cdx_event_subscriber_lag Events in the log a subscriber has not handled yet.\n"
          "# TYPE cdx_event_subscriber_lag gauge\n";
      for (const auto& s : stats)
        out += fmt::format("cdx_event_subscriber_lag{{subscriber=\"{}\"}} {}\n", s.name, s.lag);
      out +=
          "# HELP cdx_event_subscriber_failing 1 while a subscriber's last attempt failed (it retries).\n"
          "# TYPE cdx_event_subscriber_failing gauge\n";
      for (const auto& s : stats)
        out +=
            fmt::format("cdx_event_subscriber_failing{{subscriber=\"{}\"}} {}\n", s.name, s.failing ? 1 : 0);
    });
  if (p.gateway) metrics.add_collector([&p](std::string& out) { p.gateway->proxy().render_metrics(out); });
  if (p.core)  // the live feed's hub lives with core (in a constellation, core's own /metrics)
    metrics.add_collector([&p](std::string& out) {
      const auto& hub = p.core->event_hub();
      out += fmt::format(
          "# HELP cdx_sse_clients Live feed (GET /api/v1/events/stream) clients connected.\n"
          "# TYPE cdx_sse_clients gauge\ncdx_sse_clients {}\n"
          "# HELP cdx_sse_dropped_total Live feed clients dropped because they did not keep up.\n"
          "# TYPE cdx_sse_dropped_total counter\ncdx_sse_dropped_total {}\n",
          hub.clients(), hub.dropped_total());
    });
  const std::string openapi =
      openapi_document(router, CDX_VERSION, p.gateway ? p.gateway->modules() : p.modules).dump();
  openapi_ptr = &openapi;

  if (p.gateway) p.gateway->tick();
  p.check_health();
  std::mutex stop_mutex;
  std::condition_variable stop_cv;
  bool stopping = false;
  uint64_t ticks = 0;
  std::thread checker([&] {
    std::unique_lock lock(stop_mutex);
    while (!stop_cv.wait_for(lock, std::chrono::seconds(1), [&] { return stopping; })) {
      lock.unlock();
      if (p.gateway) p.gateway->tick();
      p.check_health();
      for (Module* m : p.modules) {
        try {
          m->tick();
        } catch (const std::exception& e) {
          log::error("module maintenance failed", {{"module", m->name()}, {"error", e.what()}});
        }
      }
      if (++ticks % 2 == 0) p.flush_usage();
      lock.lock();
    }
  });

  http::ServerOptions opts;
  opts.host = p.config.host;
  opts.port = static_cast<uint16_t>(p.config.port);
  opts.threads = p.config.threads;
  opts.body_limit = static_cast<size_t>(p.config.body_limit);
  opts.header_limit = static_cast<size_t>(p.config.header_limit);
  opts.authenticate_public = assertions != nullptr;
  opts.max_connections = static_cast<size_t>(p.config.max_connections);
  // A service behind the gateway has one client, the gateway: its pool is not an attacker's flood.
  opts.max_connections_per_client = assertions ? 0 : static_cast<size_t>(p.config.max_connections_per_client);
  http::Server server(opts, router, metrics, chain);
  uint16_t port = 0;
  try {
    port = server.listen();
  } catch (const std::exception& e) {
    log::error("cannot listen", {{"host", opts.host}, {"port", opts.port}, {"error", e.what()}});
    {
      std::lock_guard lock(stop_mutex);
      stopping = true;
    }
    stop_cv.notify_all();
    checker.join();
    for (Module* m : p.modules) m->stop();
    return 1;
  }
  std::thread relay_thread([&p] { p.run_relay(); });
  for (Module* m : p.modules) m->start_background();

  // Signals are waited for on a plain thread (main() blocked them before any thread started).
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  std::thread signals([&] {
    int sig = 0;
    sigwait(&set, &sig);
    log::info("signal received; draining", {{"signal", sig}});
    server.stop();
  });

  log::info("listening", {{"url", fmt::format("http://{}:{}", opts.host, port)},
                          {"service", p.monolith() ? "cdx" : p.config.module},
                          {"port", port},
                          {"threads", opts.threads},
                          {"workers", p.config.workers},
                          {"database", p.config.database_url.empty() ? "sqlite" : "postgresql"},
                          {"version", CDX_VERSION}});
  server.run();
  {
    std::lock_guard lock(stop_mutex);
    stopping = true;
  }
  stop_cv.notify_all();
  checker.join();
  {
    std::lock_guard lock(p.relay_mu);
    p.relay_stop = true;
  }
  p.relay_cv.notify_one();
  relay_thread.join();
  for (Module* m : p.modules) m->stop();
  p.flush_usage();  // the calls of the last seconds
  if (p.gateway) p.gateway->flush_usage();
  // A job still running (a request the drain gave up on) resumes its coroutine on one of the server's
  // io_contexts when it ends: the pools finish before the server and its io_contexts go.
  p.workers.stop();
  p.hashers.stop();
  pthread_kill(signals.native_handle(), SIGTERM);  // harmless if it already returned
  signals.join();
  log::info("stopped");
  return 0;
}

}  // namespace cdx::app
