#include "webhooks/webhooks.hpp"

#include <algorithm>
#include <map>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/ids.hpp"
#include "common/key_encryption.hpp"
#include "common/log.hpp"
#include "webhooks/sender.hpp"
#include "webhooks/signature.hpp"

namespace cdx::webhooks {

using nlohmann::json;

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
}

// The fan-out runs in the event feed's platform transaction and reads each tenant's endpoints, which
// row-level security shows only to a transaction acting in that tenant: it acts in each in turn.
void act_in(db::Tx& tx, const std::string& tenant_id) {
  if (tx.backend() == db::Backend::kPostgres)
    tx.query("SELECT set_config('cdx.tenant_id', $1, true)", {tenant_id});
}

std::string body_of(const std::string& type, const std::string& timestamp, const json& data) {
  return json{{"type", type}, {"timestamp", timestamp}, {"data", data}}.dump(-1, ' ', false,
                                                                             json::error_handler_t::replace);
}

std::vector<std::string> strings(const json& v) {
  std::vector<std::string> out;
  for (const auto& s : v) out.push_back(s.get<std::string>());
  return out;
}

}  // namespace

Options Options::from(const Config& c) {
  Options o;
  o.allow_loopback = c.webhooks_allow_loopback;
  o.timeout = std::chrono::milliseconds(c.webhooks_timeout_ms);
  if (!c.webhooks_retry_schedule.empty()) {
    std::string why;
    auto s = RetrySchedule::parse(c.webhooks_retry_schedule, &why);
    if (!s) throw ConfigError("setting 'webhooks_retry_schedule': " + why);
    o.schedule = *s;
  }
  o.disable_after = std::chrono::seconds(c.webhooks_disable_after);
  o.retention = std::chrono::hours(24 * c.event_retention_days);
  return o;
}

bool type_matches(const std::vector<std::string>& patterns, std::string_view type) {
  for (std::string_view p : patterns) {
    if (p == "*") return true;
    if (p.size() > 2 && p.ends_with(".*")) p.remove_suffix(1);  // "crm.*" is the prefix "crm."
    if (!p.empty() && p.back() == '.') {
      if (type.size() > p.size() && type.starts_with(p)) return true;
    } else if (p == type) {
      return true;
    }
  }
  return false;
}

std::vector<std::string> log_types(const std::vector<std::string>& patterns) {
  std::vector<std::string> out;
  for (std::string_view p : patterns) {
    if (p == "*") return {};
    if (p.size() > 2 && p.ends_with(".*")) p.remove_suffix(1);
    out.emplace_back(p);
  }
  return out;
}

Webhooks::Webhooks(std::shared_ptr<db::Database> db, WorkerPool& workers, const ScopeMinter& minter,
                   Options options, std::function<const KeyEncryption&()> kek)
    : db_(std::move(db)),
      workers_(workers),
      minter_(minter),
      options_(std::move(options)),
      kek_(std::move(kek)) {}

Webhooks::~Webhooks() {
  stop();
  sender_.reset();
}

void Webhooks::start() {
  if (sender_) return;
  sender_ = std::make_unique<Sender>(*this);
  sender_->start();
}

void Webhooks::stop() {
  // Not destroyed here: the platform stops modules before its worker pools, whose jobs may still call
  // wake() or forget().
  if (sender_) sender_->stop();
}

size_t Webhooks::prune(int64_t cutoff_ms) {
  constexpr int kBatch = 1000, kBatches = 10;
  size_t n = 0;
  for (int i = 0; i < kBatches; ++i) {
    const size_t step = db_->write_platform([&](db::Tx& tx) { return store_.prune(tx, cutoff_ms, kBatch); });
    n += step;
    if (step < static_cast<size_t>(kBatch)) break;
  }
  return n;
}

void Webhooks::wake() {
  if (sender_) sender_->wake();
}

size_t Webhooks::sender_steps() const { return sender_ ? sender_->steps() : 0; }

std::string Webhooks::seal_name(const std::string& id, bool previous) const {
  return "webhook_secret/" + id + (previous ? "/previous" : "");
}

EndpointRow Webhooks::must_find(db::Tx& tx, const db::TenantScope& scope, const std::string& id) {
  auto e = store_.find_endpoint(tx, scope.tenant_id(), id);
  if (!e) throw Error(Code::kNotFound, "webhook endpoint '" + id + "' does not exist");
  return *e;
}

json Webhooks::create_endpoint(const db::TenantScope& scope, const json& f) {
  const KeyEncryption& keks = kek_();
  EndpointRow e;
  e.id = new_uuid_v7();
  e.tenant_id = scope.tenant_id();
  e.url = f.at("url").get<std::string>();
  e.event_types = strings(f.at("event_types"));
  if (f.contains("description") && f["description"].is_string())
    e.description = f["description"].get<std::string>();
  e.enabled = !f.contains("enabled") || !f["enabled"].is_boolean() || f["enabled"].get<bool>();
  const std::string secret = new_secret();
  Sealed s = keks.seal(secret, seal_name(e.id, false));
  e.secret = s.text;
  e.secret_kek = s.kek_id;
  e.created_at = e.updated_at = format_rfc3339(Clock::now());
  db_->write(scope, [&](db::Tx& tx) { store_.insert_endpoint(tx, e); });
  json out = to_json(e);
  out["secret"] = secret;
  return out;
}

json Webhooks::get_endpoint(const db::TenantScope& scope, const std::string& id) {
  return db_->read(scope, [&](db::Tx& tx) { return to_json(must_find(tx, scope, id)); });
}

json Webhooks::list_endpoints(const db::TenantScope& scope, int limit,
                              const std::optional<std::string>& cursor) {
  auto rows = db_->read(
      scope, [&](db::Tx& tx) { return store_.list_endpoints(tx, scope.tenant_id(), limit, cursor); });
  json data = json::array();
  for (const auto& e : rows) data.push_back(to_json(e));
  return data;  // limit + 1 rows at most: http::render_page makes the cursor
}

json Webhooks::update_endpoint(const db::TenantScope& scope, const std::string& id, const json& f) {
  EndpointRow e = db_->write(scope, [&](db::Tx& tx) {
    EndpointRow e = must_find(tx, scope, id);
    if (f.contains("url")) e.url = f["url"].get<std::string>();
    if (f.contains("event_types")) e.event_types = strings(f["event_types"]);
    if (f.contains("description"))
      e.description = f["description"].is_string() ? f["description"].get<std::string>() : "";
    if (f.contains("enabled") && f["enabled"].is_boolean()) {
      const bool on = f["enabled"].get<bool>();
      if (on && !e.enabled) e.disabled_reason.clear(), e.failing_since.reset();  // a fresh start
      if (!on && e.enabled) e.disabled_reason = "disabled by a user";
      e.enabled = on;
    }
    e.updated_at = format_rfc3339(Clock::now());
    store_.update_endpoint(tx, e);
    return e;
  });
  if (sender_) sender_->forget(id);
  return to_json(e);
}

void Webhooks::delete_endpoint(const db::TenantScope& scope, const std::string& id) {
  const bool gone =
      db_->write(scope, [&](db::Tx& tx) { return store_.delete_endpoint(tx, scope.tenant_id(), id); });
  if (!gone) throw Error(Code::kNotFound, "webhook endpoint '" + id + "' does not exist");
  if (sender_) sender_->forget(id);
}

json Webhooks::rotate_secret(const db::TenantScope& scope, const std::string& id) {
  const KeyEncryption& keks = kek_();
  const std::string secret = new_secret();
  EndpointRow e = db_->write(scope, [&](db::Tx& tx) {
    EndpointRow e = must_find(tx, scope, id);
    // The old secret moves to the previous slot, re-sealed under its new name, and signs beside the new one
    // for the overlap (a receiver deploying the new secret verifies either signature meanwhile).
    const std::string old = keks.open({e.secret_kek, e.secret}, seal_name(e.id, false));
    Sealed prev = keks.seal(old, seal_name(e.id, true));
    e.previous_secret = prev.text;
    e.previous_secret_kek = prev.kek_id;
    e.previous_until = now_ms() + options_.rotation_overlap.count();
    Sealed cur = keks.seal(secret, seal_name(e.id, false));
    e.secret = cur.text;
    e.secret_kek = cur.kek_id;
    e.updated_at = format_rfc3339(Clock::now());
    store_.update_endpoint(tx, e);
    return e;
  });
  if (sender_) sender_->forget(id);
  json out = to_json(e);
  out["secret"] = secret;
  out["previous_secret_expires_at"] = format_rfc3339(SysTime(std::chrono::milliseconds(e.previous_until)));
  return out;
}

std::optional<Webhooks::Signing> Webhooks::signing(const std::string& tenant_id,
                                                   const std::string& endpoint_id) {
  const db::TenantScope scope = minter_.mint(tenant_id);
  auto e = db_->read(scope, [&](db::Tx& tx) { return store_.find_endpoint(tx, tenant_id, endpoint_id); });
  if (!e) return std::nullopt;
  const KeyEncryption& keks = kek_();
  Signing s;
  s.url = e->url;
  s.enabled = e->enabled;
  s.failing_since = e->failing_since;
  auto key = secret_key(keks.open({e->secret_kek, e->secret}, seal_name(e->id, false)));
  if (key) s.keys.push_back(*key);
  if (!e->previous_secret.empty() && e->previous_until > now_ms()) {
    auto prev = secret_key(keks.open({e->previous_secret_kek, e->previous_secret}, seal_name(e->id, true)));
    if (prev) s.keys.push_back(*prev);
  }
  return s;
}

json Webhooks::send_test(const db::TenantScope& scope, const std::string& id) {
  const std::string event_id = new_uuid_v7();
  const std::string now = format_rfc3339(Clock::now());
  json d = db_->write(scope, [&](db::Tx& tx) {
    EndpointRow e = must_find(tx, scope, id);
    NewDelivery n{
        scope.tenant_id(),
        e.id,
        "msg_" + event_id,
        event_id,
        "webhook.test",
        body_of("webhook.test", now, {{"endpoint_id", e.id}, {"message", "A test event from CDX."}})};
    const auto ids = store_.insert_deliveries(tx, {n}, now_ms());
    return *store_.find_delivery(tx, scope.tenant_id(), ids.at(0));
  });
  wake();
  return d;
}

json Webhooks::list_deliveries(const db::TenantScope& scope, const std::string& endpoint_id, int limit,
                               const std::optional<std::string>& cursor,
                               const std::optional<std::string>& status) {
  return db_->read(scope, [&](db::Tx& tx) {
    must_find(tx, scope, endpoint_id);
    return store_.list_deliveries(tx, scope.tenant_id(), endpoint_id, limit, cursor, status);
  });
}

json Webhooks::replay_delivery(const db::TenantScope& scope, const std::string& id) {
  json d = db_->write(scope, [&](db::Tx& tx) {
    switch (store_.requeue(tx, scope.tenant_id(), id, now_ms())) {
      case Store::Requeue::kNotFound:
        throw Error(Code::kNotFound, "webhook delivery '" + id + "' does not exist");
      case Store::Requeue::kNow:
      case Store::Requeue::kAfterTheAttemptInFlight:
        break;
    }
    return *store_.find_delivery(tx, scope.tenant_id(), id);
  });
  wake();
  return d;
}

json Webhooks::replay_since(const db::TenantScope& scope, const std::string& endpoint_id,
                            const std::string& since) {
  // The log is read in pages (core's SQL filters the tenant, types and time), each page queued in its own
  // transaction; a call queues at most kMax and says where to go on.
  constexpr size_t kMax = 100'000;
  constexpr int kPage = 2000;
  if (!read_log) throw Error(Code::kServiceUnavailable, "the event log cannot be read here");
  const EndpointRow e = db_->read(scope, [&](db::Tx& tx) { return must_find(tx, scope, endpoint_id); });
  const LogQuery query{scope.tenant_id(), log_types(e.event_types), since};
  size_t queued = 0;
  int64_t after = 0;
  std::optional<std::string> next_since;
  while (true) {
    const int want = static_cast<int>(std::min<size_t>(kPage, kMax - queued));
    const auto page = read_log(after, query, want + 1);  // one more: whether more remain, and from when
    const size_t took = std::min<size_t>(page.size(), want);
    std::vector<NewDelivery> rows;
    rows.reserve(took);
    for (size_t i = 0; i < took; ++i) {
      const Event& ev = page[i];
      rows.push_back({scope.tenant_id(), e.id, "msg_" + ev.id, ev.id, ev.type,
                      body_of(ev.type, ev.created_at, ev.data)});
    }
    if (!rows.empty()) db_->write(scope, [&](db::Tx& tx) { store_.insert_deliveries(tx, rows, now_ms()); });
    queued += took;
    if (took > 0) after = page[took - 1].seq;
    if (page.size() <= static_cast<size_t>(want)) break;  // the log's end
    if (queued >= kMax) {
      next_since = page[took].created_at;
      break;
    }
  }
  if (queued > 0) wake();
  return {{"queued", queued},
          {"since", since},
          {"more", next_since.has_value()},
          {"next_since", next_since ? json(*next_since) : json(nullptr)}};
}

size_t Webhooks::fan_out(db::Tx& tx, const std::vector<Event>& batch) {
  // Each tenant's endpoints are read once a batch, however its events interleave with other tenants'.
  std::map<std::string, std::vector<Store::Route>> routes;
  for (const Event& ev : batch) {
    if (ev.tenant_id.empty() || routes.contains(ev.tenant_id)) continue;  // platform events: no tenant's app
    act_in(tx, ev.tenant_id);
    routes.emplace(ev.tenant_id, store_.routes(tx, ev.tenant_id));
  }
  if (routes.empty()) return 0;
  act_in(tx, "");
  std::vector<NewDelivery> rows;
  for (const Event& ev : batch) {
    if (ev.tenant_id.empty()) continue;
    std::string body;
    for (const auto& route : routes.at(ev.tenant_id)) {
      // What happened before the endpoint existed is not its to hear (replay?since= asks for it).
      if (ev.created_at < route.created_at || !type_matches(route.event_types, ev.type)) continue;
      if (body.empty()) body = body_of(ev.type, ev.created_at, ev.data);
      rows.push_back({ev.tenant_id, route.id, "msg_" + ev.id, ev.id, ev.type, body});
    }
  }
  store_.insert_deliveries(tx, rows, now_ms());
  return rows.size();
}

size_t Webhooks::reseal_secrets() {
  const KeyEncryption& keks = kek_();
  const auto tenants = db_->read_platform([&](db::Tx& tx) {
    std::vector<std::string> out;
    for (const auto& r : tx.query("SELECT id FROM cdx_db.tenants").rows) out.push_back(r.text(0));
    return out;
  });
  size_t n = 0;
  for (const std::string& tenant : tenants) {
    const db::TenantScope scope = minter_.mint(tenant);
    n += db_->write(scope, [&](db::Tx& tx) {
      size_t sealed = 0;
      for (EndpointRow e : store_.list_endpoints(tx, tenant, 1'000'000, std::nullopt)) {
        bool changed = false;
        if (e.secret_kek != keks.id()) {
          Sealed s =
              keks.seal(keks.open({e.secret_kek, e.secret}, seal_name(e.id, false)), seal_name(e.id, false));
          e.secret = s.text, e.secret_kek = s.kek_id, changed = true;
        }
        if (!e.previous_secret.empty() && e.previous_secret_kek != keks.id()) {
          Sealed s = keks.seal(keks.open({e.previous_secret_kek, e.previous_secret}, seal_name(e.id, true)),
                               seal_name(e.id, true));
          e.previous_secret = s.text, e.previous_secret_kek = s.kek_id, changed = true;
        }
        if (changed) store_.update_endpoint(tx, e), ++sealed;
      }
      return sealed;
    });
  }
  if (n > 0)
    log::info("webhook secrets sealed with the key encryption key", {{"kek_id", keks.id()}, {"sealed", n}});
  return n;
}

void Webhooks::purge_tenant(const db::TenantScope& scope) {
  db_->write(scope, [&](db::Tx& tx) { store_.purge_tenant(tx, scope.tenant_id()); });
}

}  // namespace cdx::webhooks
