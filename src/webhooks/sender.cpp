#include "webhooks/sender.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <algorithm>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "webhooks/signature.hpp"

namespace cdx::webhooks {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
}

// A claimed delivery is ours until its lease ends: the attempt's timeout plus this margin (time to record
// the outcome). A claim takes only what has a free slot, so the attempt starts at once and ends before the
// lease; after it (a crash, a stop, a database too slow to record) the delivery is due again and is sent
// again, at least once: the late outcome is then not recorded (the lease fences it).
constexpr int64_t kLeaseMarginMs = 30'000;
constexpr auto kIdleMax = 1000ms;   // an idle sender looks at least this often (other replicas' work)
constexpr auto kPruneEvery = 1min;  // the delivery log's retention pass
constexpr auto kCacheTtl = 1s;      // how stale an endpoint's url, secrets and state may be on this replica

}  // namespace

Sender::Sender(Webhooks& hooks)
    : hooks_(hooks),
      client_(io_, {.allow_loopback = hooks.options().allow_loopback, .timeout = hooks.options().timeout}) {}

Sender::~Sender() { stop(); }

void Sender::start() {
  // SQLite has one process per file: a lease left in it was this server's before a crash, and nobody is
  // sending it now. (On PostgreSQL another replica may be: those leases run out instead.)
  if (hooks_.database().backend() == db::Backend::kSqlite)
    hooks_.database().write_platform([&](db::Tx& tx) { hooks_.store().release_leases(tx, now_ms()); });
  guard_.emplace(io_.get_executor());
  io_thread_ = std::thread([this] { io_.run(); });
  db_thread_ = std::thread([this] { db_loop(); });
}

void Sender::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (db_thread_.joinable()) db_thread_.join();
  guard_.reset();
  io_.stop();  // attempts in flight are abandoned: their leases run out and they are sent again
  if (io_thread_.joinable()) io_thread_.join();
}

void Sender::wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void Sender::forget(const std::string& endpoint_id) {
  std::lock_guard lock(mu_);
  cache_.erase(endpoint_id);
}

void Sender::db_loop() {
  auto next_prune = std::chrono::steady_clock::now() + 2s;  // soon after a start, then once a minute
  while (true) {
    {
      std::unique_lock lock(mu_);
      if (stopping_) return;
    }
    auto wait = std::chrono::milliseconds(kIdleMax);
    try {
      flush();
      wait = claim();
      if (std::chrono::steady_clock::now() >= next_prune) {
        next_prune = std::chrono::steady_clock::now() + kPruneEvery;
        prune();
      }
    } catch (const std::exception& e) {
      log::warn("webhook sender step failed; retrying", {{"error", e.what()}});
    }
    steps_.fetch_add(1, std::memory_order_relaxed);
    std::unique_lock lock(mu_);
    if (wait.count() > 0) cv_.wait_for(lock, wait, [&] { return stopping_ || woken_ || !done_.empty(); });
    woken_ = false;
  }
}

std::optional<Webhooks::Signing> Sender::signing_of(const Claimed& c) {
  {
    std::lock_guard lock(mu_);
    auto it = cache_.find(c.endpoint_id);
    if (it != cache_.end() && std::chrono::steady_clock::now() - it->second.loaded < kCacheTtl)
      return it->second.signing;
  }
  auto s = hooks_.signing(c.tenant_id, c.endpoint_id);
  std::lock_guard lock(mu_);
  if (s) cache_[c.endpoint_id] = {*s, std::chrono::steady_clock::now()};
  return s;
}

void Sender::prune() {
  const size_t n = hooks_.prune(now_ms() - hooks_.options().retention.count());
  if (n > 0) log::info("webhook delivery log pruned", {{"deliveries", n}});
}

std::chrono::milliseconds Sender::claim() {
  const Options& o = hooks_.options();
  Room room;
  {
    std::lock_guard lock(mu_);
    room.total = o.max_in_flight - held_;
    room.per_endpoint = o.per_endpoint;
    room.per_tenant = o.per_tenant;
    room.endpoint_load = endpoint_load_;
    room.tenant_load = tenant_load_;
    // Endpoints not heard of for a while leave the cache (its entries are a second's copies anyway).
    const auto old = std::chrono::steady_clock::now() - 5min;
    std::erase_if(cache_, [&](const auto& kv) { return kv.second.loaded < old; });
  }
  if (room.total <= 0) return kIdleMax;  // busy: finished attempts wake the loop
  // Sleeps until the next delivery is due, at most kIdleMax (other replicas' and processes' work); the
  // fan-out wakes it after its commit, finished attempts when they are done. A read first, so an idle
  // sender takes no write lock (SQLite has one).
  const int64_t now = now_ms();
  auto until = [&](std::optional<int64_t> due) {
    if (!due) return std::chrono::milliseconds(kIdleMax);
    return std::clamp(std::chrono::milliseconds(*due - now), 0ms, std::chrono::milliseconds(kIdleMax));
  };
  const auto next = hooks_.database().read_platform([&](db::Tx& tx) { return hooks_.store().next_due(tx); });
  if (!next || *next > now) return until(next);
  bool more = false;
  std::optional<int64_t> due_later;
  auto claimed = hooks_.database().write_platform([&](db::Tx& tx) {
    auto got = hooks_.store().claim(tx, now, now + o.timeout.count() + kLeaseMarginMs, room, &more);
    // What is due now and was not claimed waits for a slot (its endpoint's or tenant's attempts in flight
    // wake the sender when they finish) or is another replica's: the next wait is for what is due later.
    if (!more) due_later = hooks_.store().next_due(tx, now);
    return got;
  });
  const auto later = [&] { return more ? 0ms : until(due_later); };
  if (claimed.empty()) return later();
  std::vector<std::pair<Claimed, std::string>> undeliverable;
  std::vector<Ready> ready;
  for (Claimed& c : claimed) {
    std::optional<Webhooks::Signing> s;
    try {
      s = signing_of(c);
    } catch (const std::exception& e) {
      log::warn("cannot read a webhook endpoint", {{"endpoint_id", c.endpoint_id}, {"error", e.what()}});
      continue;  // the lease runs out and it is claimed again
    }
    if (!s) {
      undeliverable.emplace_back(std::move(c), "the endpoint no longer exists");
      continue;
    }
    if (!s->enabled) {
      undeliverable.emplace_back(std::move(c), "the endpoint is disabled");
      continue;
    }
    auto url = parse_url(s->url);
    if (!url || s->keys.empty()) {
      undeliverable.emplace_back(std::move(c),
                                 url ? "the endpoint's secret cannot be read" : "the URL is invalid");
      continue;
    }
    ready.push_back({std::move(c), std::move(*url), s->keys});
  }
  if (!undeliverable.empty())
    hooks_.database().write_platform([&](db::Tx& tx) {
      for (const auto& [c, why] : undeliverable) hooks_.store().fail_undeliverable(tx, c, why);
    });
  std::lock_guard lock(mu_);
  for (Ready& r : ready) {
    ++endpoint_load_[r.delivery.endpoint_id];
    ++tenant_load_[r.delivery.tenant_id];
    ++held_;
    const std::string e = r.delivery.endpoint_id;
    waiting_[e].push_back(std::move(r));
  }
  launch();
  return later();
}

void Sender::launch() {
  const Options& o = hooks_.options();
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    auto& q = it->second;
    while (!q.empty() && flying_ < o.max_in_flight && endpoint_flying_[it->first] < o.per_endpoint &&
           tenant_flying_[q.front().delivery.tenant_id] < o.per_tenant) {
      Ready r = std::move(q.front());
      q.pop_front();
      ++flying_;
      ++endpoint_flying_[it->first];
      ++tenant_flying_[r.delivery.tenant_id];
      asio::co_spawn(io_.get_executor(), deliver(std::move(r)), asio::detached);
    }
    it = q.empty() ? waiting_.erase(it) : std::next(it);
  }
}

Task<void> Sender::deliver(Ready r) {
  const int64_t ts = Clock::unix_seconds();
  std::string signatures;
  for (const auto& key : r.keys) {
    if (!signatures.empty()) signatures += ' ';
    signatures += sign(key, r.delivery.msg_id, ts, r.delivery.payload);
  }
  Done d;
  d.attempted_at = format_rfc3339(Clock::now());
  Client::Headers headers;  // built apart: GCC 12 cannot brace-initialise inside a co_await expression
  headers.emplace_back("webhook-id", r.delivery.msg_id);
  headers.emplace_back("webhook-timestamp", std::to_string(ts));
  headers.emplace_back("webhook-signature", std::move(signatures));
  try {
    d.result = co_await client_.post(r.url, r.delivery.payload, headers, r.delivery.tenant_id);
  } catch (const std::exception& e) {
    d.result.error = e.what();
  }
  d.delivery = std::move(r.delivery);
  {
    std::lock_guard lock(mu_);
    done_.push_back(std::move(d));
  }
  cv_.notify_all();
}

void Sender::flush() {
  std::vector<Done> done;
  {
    std::lock_guard lock(mu_);
    done.swap(done_);
  }
  if (done.empty()) return;
  const Options& o = hooks_.options();
  const int64_t now = now_ms();
  std::vector<Attempt> attempts;
  attempts.reserve(done.size());
  for (const Done& d : done) {
    const SendResult& r = d.result;
    Attempt a;
    a.delivery_id = d.delivery.id;
    a.tenant_id = d.delivery.tenant_id;
    a.endpoint_id = d.delivery.endpoint_id;
    a.attempted_at = d.attempted_at;
    a.status_code = r.status;
    a.latency_ms = r.latency_ms;
    a.response = r.excerpt;
    a.error = r.error;
    if (a.error.empty() && !(r.status >= 200 && r.status < 300))
      a.error = "the endpoint answered " + std::to_string(r.status);
    a.tries = d.delivery.tries + 1;
    a.lease = d.delivery.lease;
    if (r.status >= 200 && r.status < 300) {
      a.status = "succeeded";
      a.error.clear();
    } else if (r.status == 410) {
      a.status = "failed";
    } else {
      const bool busy = r.status == 429 || r.status == 503;
      auto wait = o.schedule.next(static_cast<size_t>(a.tries), busy ? r.retry_after : std::nullopt, rng_);
      if (wait) {
        a.status = "pending";
        a.next_attempt_at = now + wait->count();
      } else {
        a.status = "failed";
      }
    }
    attempts.push_back(std::move(a));
  }
  std::vector<bool> recorded;
  try {
    hooks_.database().write_platform([&](db::Tx& tx) { hooks_.store().record(tx, attempts, &recorded); });
  } catch (const std::exception& e) {
    // Not recorded: the leases run out and the deliveries are sent again (at-least-once).
    log::warn("cannot record webhook attempts", {{"error", e.what()}, {"attempts", attempts.size()}});
    recorded.assign(done.size(), false);
  }
  for (size_t i = 0; i < done.size(); ++i) {
    const Done& d = done[i];
    // An attempt whose lease was lost (claimed again elsewhere, deleted) says nothing of the endpoint's
    // state either: the new claim's outcome does.
    if (!recorded[i]) continue;
    try {
      endpoint_outcome(d.delivery, d.result, d.result.status == 410);
    } catch (const std::exception& e) {
      log::warn("cannot update a webhook endpoint's state",
                {{"endpoint_id", d.delivery.endpoint_id}, {"error", e.what()}});
    }
  }
  std::lock_guard lock(mu_);
  auto drop = [](std::map<std::string, int>& m, const std::string& k) {
    auto it = m.find(k);
    if (it != m.end() && --it->second <= 0) m.erase(it);
  };
  for (const Done& d : done) {
    drop(endpoint_load_, d.delivery.endpoint_id);
    drop(tenant_load_, d.delivery.tenant_id);
    drop(endpoint_flying_, d.delivery.endpoint_id);
    drop(tenant_flying_, d.delivery.tenant_id);
    --held_;
    --flying_;
  }
  launch();
}

void Sender::endpoint_outcome(const Claimed& c, const SendResult& r, bool gone) {
  const Options& o = hooks_.options();
  const bool ok = r.status >= 200 && r.status < 300;
  std::optional<int64_t> failing;
  bool known = false;
  {
    std::lock_guard lock(mu_);
    auto it = cache_.find(c.endpoint_id);
    if (it != cache_.end()) known = true, failing = it->second.signing.failing_since;
  }
  if (!known) {  // forgotten (changed, or pruned): read again, unless deleted meanwhile
    try {
      auto s = signing_of(c);
      if (!s) return;
      failing = s->failing_since;
    } catch (const std::exception&) {
      return;
    }
  }
  const db::TenantScope scope = hooks_.minter().mint(c.tenant_id);
  auto disable = [&](const std::string& reason) {
    hooks_.database().write(scope, [&](db::Tx& tx) {
      hooks_.store().disable(tx, c.tenant_id, c.endpoint_id, reason);
      if (hooks_.on_disabled) hooks_.on_disabled(tx, c.tenant_id, c.endpoint_id, reason);
    });
    log::info("webhook endpoint disabled",
              {{"tenant_id", c.tenant_id}, {"endpoint_id", c.endpoint_id}, {"reason", reason}});
    std::lock_guard lock(mu_);
    cache_.erase(c.endpoint_id);
  };
  if (gone) return disable("the endpoint answered 410 Gone");
  const int64_t now = now_ms();
  auto remember = [&](std::optional<int64_t> v) {
    hooks_.database().write(
        scope, [&](db::Tx& tx) { hooks_.store().set_failing(tx, c.tenant_id, c.endpoint_id, v); });
    std::lock_guard lock(mu_);
    auto it = cache_.find(c.endpoint_id);
    if (it != cache_.end()) it->second.signing.failing_since = v;
  };
  if (ok) {
    if (failing) remember(std::nullopt);
    return;
  }
  if (!failing) return remember(now);
  if (now - *failing >= o.disable_after.count())
    disable("failing since " + format_rfc3339(SysTime(std::chrono::milliseconds(*failing))));
}

}  // namespace cdx::webhooks
