#include "app/platform.hpp"

#include <utility>
#include <boost/asio/signal_set.hpp>
#include <fmt/format.h>

#include <cmath>
#include <condition_variable>
#include <csignal>
#include <thread>

#include "app/openapi.hpp"
#include "auth/module.hpp"
#include "common/clock.hpp"
#include "common/log.hpp"
#include "common/worker_pool.hpp"
#include "core/module.hpp"
#include "crm/module.hpp"
#include "db/outbox.hpp"
#include "http/metrics.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

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
  DeferredAuthApi auth_api;
  std::unique_ptr<core::CoreModule> core;
  std::unique_ptr<auth::AuthModule> auth;
  std::unique_ptr<crm::CrmModule> crm;
  std::vector<Module*> modules;
  db::OutboxRelay relay;  // drains the modules' outboxes from the once-a-second tick
  HealthCache health;

  explicit Impl(Config c)
      : config(std::move(c)),
        workers(static_cast<size_t>(config.workers)),
        hashers(static_cast<size_t>(config.hash_workers)) {
    db::StorageConfig sc;
    sc.data_dir = config.data_dir;
    sc.database_url = config.database_url;
    sc.migration_database_url = config.migration_database_url;
    sc.pool_size = config.db_pool_size;
    for (const auto& [schema, url] : config.module_database_urls) sc.module_urls.emplace_back(schema, url);
    factory = db::make_connection_factory(sc);
    core = std::make_unique<core::CoreModule>(factory->open("cdx_db"), workers, auth_api,
                                              [this](const db::TenantScope& scope) {
                                                for (Module* m : modules) m->purge_tenant(scope);
                                              });
    auth = std::make_unique<auth::AuthModule>(factory->open("auth_db"), workers, hashers, core->service(), config);
    auth_api.target = &auth->api();
    crm = std::make_unique<crm::CrmModule>(factory->open("crm_db"), workers);
    modules = {core.get(), auth.get(), crm.get()};
    relay.add_source(crm->outbox_database());
    relay.subscribe("", [](const db::OutboxEvent& e) {
      log::debug("domain event", {{"schema", e.schema}, {"type", e.type}, {"id", e.id}, {"tenant_id", e.tenant_id}});
    });
  }

  void check_health() {
    nlohmann::json checks = nlohmann::json::object();
    bool ok = true;
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
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      c["latency_ms"] = std::round(ms * 100) / 100;
      checks[m->database().schema()] = c;
    }
    nlohmann::json body = {{"status", ok ? "ok" : "down"},
                           {"service", "cdx"},
                           {"version", CDX_VERSION},
                           {"checks", checks}};
    health.publish(ok ? 200 : 503, body.dump());
  }

  void seed_demo() {
    log::warn("DEMO MODE: demo credentials are active (test/test123, john.doe@demo.com/demo123). "
              "Never run --demo in production.");
    auto& tenants = core->service();
    tenants.create_superadmin("test", "test123");
    if (!tenants.find_tenant("demo")) {
      core::NewTenant t;
      t.name = "Demo Company";
      t.slug = "demo";
      t.admin_email = "john.doe@demo.com";
      t.admin_password = "demo123";
      t.seeding = true;
      tenants.create_tenant(t);
      tenants.seed_user("demo", "jane.smith@demo.com", "Jane Smith", "CLIENT", "demo123");
      tenants.seed_in_tenant("demo", [&](const db::TenantScope& scope) { crm->seed_demo(scope); });
      log::info("demo data seeded", {{"tenant", "demo"}});
    }
  }

  void mount_operations(http::Router& router, http::Metrics*& metrics_slot, const std::string*& openapi) {
    router.add_sync(
        http::Method::kGet, "/health",
        [this](http::Context& ctx) {
          ctx.res.content_type = "application/json";
          health.read(ctx.res.status, ctx.res.body);
        },
        {.summary = "Liveness and dependency checks (refreshed every second)", .tag = "operations",
         .response_schema = "Health"});
    router.add_sync(
        http::Method::kGet, "/metrics",
        [&metrics_slot](http::Context& ctx) {
          ctx.res.set(200, "text/plain; version=0.0.4; charset=utf-8", metrics_slot->render());
        },
        {.summary = "Prometheus metrics", .tag = "operations"});
    router.add_sync(
        http::Method::kGet, "/openapi.json",
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
  if (!impl_->config.bootstrap_superadmin.empty()) {
    if (impl_->core->service().bootstrap_superadmin(impl_->config.bootstrap_superadmin))
      log::info("bootstrap superadmin created");
  }
  if (impl_->config.demo) impl_->seed_demo();
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

int Platform::serve() {
  Impl& p = *impl_;
  http::Router router;
  http::Metrics* metrics_ptr = nullptr;
  const std::string* openapi_ptr = nullptr;
  for (Module* m : p.modules) m->mount(router);
  p.mount_operations(router, metrics_ptr, openapi_ptr);

  http::Metrics metrics(router);
  metrics_ptr = &metrics;
  metrics.add_collector([&p](std::string& out) {
    out += "# HELP cdx_db_pool_connections Database connections by schema and state.\n"
           "# TYPE cdx_db_pool_connections gauge\n";
    for (Module* m : p.modules) {
      auto s = m->database().stats();
      out += fmt::format("cdx_db_pool_connections{{schema=\"{}\",state=\"open\"}} {}\n", m->database().schema(), s.size);
      out += fmt::format("cdx_db_pool_connections{{schema=\"{}\",state=\"in_use\"}} {}\n", m->database().schema(),
                         s.in_use);
      out += fmt::format("cdx_db_pool_waits_total{{schema=\"{}\"}} {}\n", m->database().schema(), s.waits);
    }
    out += "# HELP cdx_worker_queue_depth Blocking jobs waiting for a worker.\n# TYPE cdx_worker_queue_depth gauge\n";
    out += fmt::format("cdx_worker_queue_depth{{pool=\"io\"}} {}\n", p.workers.queued());
    out += fmt::format("cdx_worker_queue_depth{{pool=\"hash\"}} {}\n", p.hashers.queued());
    out += "# HELP cdx_outbox_events_total Outbox events by delivery outcome.\n# TYPE cdx_outbox_events_total counter\n";
    out += fmt::format("cdx_outbox_events_total{{outcome=\"delivered\"}} {}\n", p.relay.delivered_total());
    out += fmt::format("cdx_outbox_events_total{{outcome=\"failed\"}} {}\n", p.relay.failed_total());
  });
  const std::string openapi = openapi_document(router, CDX_VERSION).dump();
  openapi_ptr = &openapi;

  p.check_health();
  std::mutex stop_mutex;
  std::condition_variable stop_cv;
  bool stopping = false;
  std::thread checker([&] {
    std::unique_lock lock(stop_mutex);
    while (!stop_cv.wait_for(lock, std::chrono::seconds(1), [&] { return stopping; })) {
      lock.unlock();
      p.check_health();
      for (Module* m : p.modules) {
        try {
          m->tick();
        } catch (const std::exception& e) {
          log::error("module maintenance failed", {{"module", m->name()}, {"error", e.what()}});
        }
      }
      p.relay.poll();  // at least once, in order; a failure is logged and retried on the next tick
      lock.lock();
    }
  });

  http::ServerOptions opts;
  opts.host = p.config.host;
  opts.port = static_cast<uint16_t>(p.config.port);
  opts.threads = p.config.threads;
  opts.body_limit = static_cast<size_t>(p.config.body_limit);
  opts.header_limit = static_cast<size_t>(p.config.header_limit);
  http::Server server(opts, router, metrics, &p.auth->authenticator());
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
    return 1;
  }

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
  pthread_kill(signals.native_handle(), SIGTERM);  // harmless if it already returned
  signals.join();
  log::info("stopped");
  return 0;
}

}  // namespace cdx::app
