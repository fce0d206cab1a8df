// Unit tests of the webhooks' pure parts (signature, SSRF classifier, URLs, retry schedule, type matching)
// and of the fan-out against a SQLite cdx_db.
#include "webhooks/webhooks.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "app/capabilities.hpp"
#include "common/clock.hpp"
#include "common/ids.hpp"
#include "common/key_encryption.hpp"
#include "db/testing.hpp"
#include "webhooks/address.hpp"
#include "webhooks/client.hpp"
#include "webhooks/resolver.hpp"
#include "webhooks/schedule.hpp"
#include "webhooks/signature.hpp"

namespace cdx::webhooks {
namespace {

using namespace std::chrono_literals;
namespace ip = boost::asio::ip;

// The Standard Webhooks specification's test vector (also what the reference libraries sign).
TEST(WebhookSignature, MatchesTheSpecificationsVector) {
  auto key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  ASSERT_TRUE(key);
  EXPECT_EQ(sign(*key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  // Any change of id, timestamp or body changes it.
  EXPECT_NE(sign(*key, "msg_p5jXN8AQM9LWM0D4loKWxJel", 1614265330, R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  EXPECT_NE(sign(*key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(WebhookSignature, SecretsAreWhsecOfRandomBytes) {
  init_crypto();
  const std::string a = new_secret(), b = new_secret();
  EXPECT_NE(a, b);
  ASSERT_TRUE(a.starts_with("whsec_"));
  auto key = secret_key(a);
  ASSERT_TRUE(key);
  EXPECT_EQ(key->size(), 24u);
  EXPECT_FALSE(secret_key("sk_abc"));
  EXPECT_FALSE(secret_key("whsec_"));
  EXPECT_FALSE(secret_key("whsec_not base64!"));
}

std::optional<std::string> why(const char* a, bool loopback = false) {
  return refused(ip::make_address(a), loopback);
}

TEST(WebhookSsrf, RefusesInnerAddresses) {
  for (const char* a : {"10.0.0.1",
                        "10.255.255.255",
                        "172.16.0.1",
                        "172.31.255.255",
                        "192.168.1.1",
                        "127.0.0.1",
                        "127.1.2.3",
                        "169.254.169.254",
                        "169.254.0.1",
                        "100.64.0.1",
                        "100.127.255.255",
                        "0.0.0.0",
                        "0.1.2.3",
                        "224.0.0.1",
                        "239.255.255.255",
                        "255.255.255.255",
                        "240.0.0.1",
                        "198.18.0.1",
                        "::",
                        "::1",
                        "fc00::1",
                        "fd12:3456::1",
                        "fd00:ec2::254",
                        "fe80::1",
                        "febf::1",
                        "ff02::1",
                        "::ffff:10.0.0.1",
                        "::ffff:127.0.0.1",
                        "::ffff:169.254.169.254",
                        "64:ff9b::a00:1",
                        "::10.0.0.1",
                        "::ffff:0:10.0.0.1",
                        "::ffff:0:169.254.169.254",
                        "::ffff:0:127.0.0.1",
                        "2002:a00:1::1",
                        "2002:a9fe:a9fe::",
                        "2002:7f00:1::1",
                        "2002:c0a8:101:5::1",
                        "64:ff9b:1::a00:1",
                        "64:ff9b:1:ffff::808:808",
                        "2001::1",
                        "2001:0:4136:e378:8000:63bf:3fff:fdd2"})
    EXPECT_TRUE(why(a)) << a;
  EXPECT_NE(why("169.254.169.254")->find("metadata"), std::string::npos);
  EXPECT_NE(why("fd00:ec2::254")->find("metadata"), std::string::npos);
  EXPECT_NE(why("10.0.0.1")->find("private"), std::string::npos);
  EXPECT_NE(why("::ffff:10.0.0.1")->find("private"), std::string::npos);
  EXPECT_NE(why("100.64.0.1")->find("CGNAT"), std::string::npos);
  EXPECT_NE(why("2002:a9fe:a9fe::")->find("metadata"), std::string::npos);
  EXPECT_NE(why("::ffff:0:10.0.0.1")->find("private"), std::string::npos);
  EXPECT_NE(why("2001::1")->find("Teredo"), std::string::npos);
  EXPECT_NE(why("64:ff9b:1::a00:1")->find("NAT64"), std::string::npos);
}

TEST(WebhookSsrf, AllowsPublicAddresses) {
  for (const char* a : {"8.8.8.8", "1.1.1.1", "172.15.255.255", "172.32.0.1", "100.63.255.255", "100.128.0.1",
                        "192.169.0.1", "2606:4700:4700::1111", "2a00:1450:4001::200e", "::ffff:8.8.8.8",
                        "::ffff:0:8.8.8.8", "2002:808:808::1", "64:ff9b::808:808", "2001:4860:4860::8888"})
    EXPECT_FALSE(why(a)) << a << ": " << why(a).value_or("");
}

TEST(WebhookSsrf, TheSwitchAllowsLoopbackOnly) {
  for (const char* a :
       {"127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1", "::ffff:0:127.0.0.1", "2002:7f00:1::"})
    EXPECT_FALSE(why(a, true)) << a;
  for (const char* a : {"10.0.0.1", "169.254.169.254", "0.0.0.0", "::", "fe80::1", "192.168.0.1"})
    EXPECT_TRUE(why(a, true)) << a;
}

TEST(WebhookUrl, ParsesHttpAndHttps) {
  auto u = parse_url("HTTPS://Hooks.Example.com/in?x=1#frag");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "hooks.example.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/in?x=1");
  EXPECT_EQ(u->host_header(), "hooks.example.com");
  u = parse_url("http://[::1]:8080");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->target, "/");
  EXPECT_EQ(u->host_header(), "[::1]:8080");
  std::string reason;
  for (const char* bad :
       {"ftp://x.com/", "//x.com/", "x.com", "http://u:p@x.com/", "http://x.com:0/", "http://x.com:99999/",
        "http:///x", "http://x .com/", "http://[::1/", "http://x.com/\x01"})
    EXPECT_FALSE(parse_url(bad, &reason)) << bad;
  EXPECT_FALSE(parse_url("https://x.com/" + std::string(2000, 'a'), &reason));
  EXPECT_NE(reason.find("2000"), std::string::npos);
}

TEST(WebhookSchedule, IsTheStandardOneWithJitter) {
  const RetrySchedule s = RetrySchedule::standard();
  EXPECT_EQ(s.attempts(), 8u);
  std::mt19937_64 rng(42);
  const std::vector<Millis> base = {0s, 5s, 5min, 30min, 2h, 5h, 10h, 10h};
  for (int round = 0; round < 50; ++round)
    for (size_t tries = 1; tries < 8; ++tries) {
      auto d = s.next(tries, std::nullopt, rng);
      ASSERT_TRUE(d);
      EXPECT_GE(d->count(), base[tries].count() * 0.9 - 1) << tries;
      EXPECT_LE(d->count(), base[tries].count() * 1.1 + 1) << tries;
    }
  EXPECT_FALSE(s.next(8, std::nullopt, rng));  // eight attempts, then failed
}

TEST(WebhookSchedule, HonoursRetryAfterWithinBounds) {
  const RetrySchedule s({0ms, 100ms, 100ms}, 0);
  std::mt19937_64 rng(1);
  EXPECT_EQ(*s.next(1, Millis(30'000), rng), 30s);
  EXPECT_EQ(*s.next(1, Millis(10), rng), 100ms);  // never sooner than the schedule
  EXPECT_EQ(*s.next(1, std::chrono::hours(100), rng), RetrySchedule::kMaxRetryAfter);
  EXPECT_EQ(parse_retry_after("120", 0), Millis(120'000));
  EXPECT_EQ(parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", 40), Millis(60'000));
  EXPECT_FALSE(parse_retry_after("soon", 0));
  EXPECT_FALSE(parse_retry_after("-1", 0));
}

TEST(WebhookSchedule, CanBeReplacedForTests) {
  auto s = RetrySchedule::parse("0, 0.5,2");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->delays(), (std::vector<Millis>{0ms, 500ms, 2000ms}));
  EXPECT_FALSE(RetrySchedule::parse(""));
  EXPECT_FALSE(RetrySchedule::parse("1,x"));
  EXPECT_FALSE(RetrySchedule::parse("-1"));
}

TEST(WebhookTypes, MatchExactlyByPrefixOrAll) {
  EXPECT_TRUE(type_matches({"*"}, "crm.contact.created"));
  EXPECT_TRUE(type_matches({"crm.*"}, "crm.contact.created"));
  EXPECT_TRUE(type_matches({"crm.contact.*"}, "crm.contact.created"));
  EXPECT_TRUE(type_matches({"cms.*", "crm.contact.created"}, "crm.contact.created"));
  EXPECT_FALSE(type_matches({"crm.*"}, "crmx.contact.created"));
  EXPECT_FALSE(type_matches({"crm.*"}, "crm"));
  EXPECT_FALSE(type_matches({"crm.contact"}, "crm.contact.created"));
  EXPECT_FALSE(type_matches({}, "crm.contact.created"));
  // The event log's grammar (GET /api/v1/events?type=): "crm." is the prefix "crm.*" is.
  EXPECT_TRUE(type_matches({"crm."}, "crm.contact.created"));
  EXPECT_FALSE(type_matches({"crm."}, "crmx.contact.created"));
  EXPECT_FALSE(type_matches({"crm."}, "crm."));
}

// A lookup that hangs until the test opens the gate, and a wait for a condition (at most 5 s).
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  void pass() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return open; });
  }
  void release() {
    {
      std::lock_guard lock(mu);
      open = true;
    }
    cv.notify_all();
  }
};

template <class F>
bool eventually(F done) {
  for (int i = 0; i < 500 && !done(); ++i) std::this_thread::sleep_for(10ms);
  return done();
}

// A tenant whose names hang holds at most per_group lookups: another tenant's name is looked up at once, and
// the hanging tenant's further names wait for its own lookups (never for a thread another tenant needs).
TEST(WebhookResolver, AHangingTenantHoldsOnlyItsShare) {
  Gate gate;
  std::atomic<int> hanging_now{0}, hanging_most{0};
  Resolver r({.max_threads = 4, .per_group = 2, .lookup = [&](const std::string& host) -> Resolver::Answer {
                if (host.starts_with("hang")) {
                  hanging_most = std::max(hanging_most.load(), ++hanging_now);
                  gate.pass();
                  --hanging_now;
                }
                return {{ip::make_address("8.8.8.8")}, ""};
              }});
  std::atomic<int> a_answers{0}, b_answers{0};
  for (int i = 0; i < 6; ++i)
    r.resolve("hang" + std::to_string(i) + ".test", "tenant-a",
              [&](const Resolver::Answer&) { ++a_answers; });
  for (int i = 0; i < 3; ++i)
    r.resolve("b" + std::to_string(i) + ".test", "tenant-b", [&](const Resolver::Answer&) { ++b_answers; });
  EXPECT_TRUE(eventually([&] { return b_answers == 3; }));
  EXPECT_EQ(hanging_most, 2);
  EXPECT_EQ(a_answers, 0);
  gate.release();
  EXPECT_TRUE(eventually([&] { return a_answers == 6; }));
  EXPECT_LE(hanging_most, 2);
}

// A replay reads the log in its own grammar (core's EventFilter): prefixes end in '.', "*" is every type.
TEST(WebhookTypes, ReplaysAskTheLogInItsGrammar) {
  EXPECT_EQ(log_types({"crm.*", "cms.entry.published", "auth."}),
            (std::vector<std::string>{"crm.", "cms.entry.published", "auth."}));
  EXPECT_TRUE(log_types({"crm.*", "*"}).empty());
}

TEST(WebhookResolver, OneLookupPerNameAtOnceAndACache) {
  Gate gate;
  std::atomic<int> slow_calls{0}, fast_calls{0}, missing_calls{0}, slow_now{0}, slow_most{0};
  Resolver r({.max_threads = 2,
              .per_group = 2,
              .found_ttl = 60s,
              .missing_ttl = 100ms,
              .lookup = [&](const std::string& host) -> Resolver::Answer {
                if (host == "slow.test") {
                  ++slow_calls;
                  slow_most = std::max(slow_most.load(), ++slow_now);
                  gate.pass();
                  --slow_now;
                  return {{ip::make_address("8.8.4.4")}, ""};
                }
                if (host == "missing.test") return ++missing_calls, Resolver::Answer{{}, "not found"};
                ++fast_calls;
                return {{ip::make_address("8.8.8.8")}, ""};
              }});
  std::atomic<int> slow_answers{0}, fast_answers{0};
  for (int i = 0; i < 10; ++i)
    r.resolve("slow.test", "t", [&](const Resolver::Answer& a) {
      if (a.error.empty() && a.addresses.at(0).to_string() == "8.8.4.4") ++slow_answers;
    });
  // The hanging name holds one of the two threads: another name is answered meanwhile, then from the cache.
  r.resolve("fast.test", "t", [&](const Resolver::Answer& a) { fast_answers += a.error.empty(); });
  EXPECT_TRUE(eventually([&] { return fast_answers == 1; }));
  r.resolve("fast.test", "t", [&](const Resolver::Answer& a) { fast_answers += a.error.empty(); });
  EXPECT_EQ(fast_answers, 2);  // at once, from the cache
  EXPECT_EQ(fast_calls, 1);
  EXPECT_EQ(slow_calls, 1);
  EXPECT_EQ(slow_answers, 0);
  gate.release();
  EXPECT_TRUE(eventually([&] { return slow_answers == 10; }));
  EXPECT_EQ(slow_calls, 1);
  EXPECT_EQ(slow_most, 1);
  // Not found is cached too, briefly.
  std::atomic<int> missing_answers{0};
  auto missing = [&](const Resolver::Answer& a) { missing_answers += !a.error.empty(); };
  r.resolve("missing.test", "t", missing);
  EXPECT_TRUE(eventually([&] { return missing_answers == 1; }));
  r.resolve("missing.test", "t", missing);
  EXPECT_EQ(missing_answers, 2);
  EXPECT_EQ(missing_calls, 1);
  std::this_thread::sleep_for(150ms);
  r.resolve("missing.test", "t", missing);
  EXPECT_TRUE(eventually([&] { return missing_answers == 3; }));
  EXPECT_EQ(missing_calls, 2);
}

TEST(WebhookExcerpt, KeepsValidUtf8WithinTheLimit) {
  EXPECT_EQ(utf8_excerpt("abc", 2), "ab");
  EXPECT_EQ(utf8_excerpt("a\xC3\xA9", 2), "a");  // no half character
  EXPECT_EQ(utf8_excerpt("a\xFF"
                         "b",
                         10),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(utf8_excerpt(std::string(5000, 'x'), 1024).size(), 1024u);
}

class FanOutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    init_crypto();
    dir_ = std::filesystem::temp_directory_path() / ("cdx-webhooks-" + random_token(10));
    factory_ = db::make_sqlite_factory(dir_.string());
    db_ = factory_->open("cdx_db");
    db_->migrate({migration(1)});
    hooks_ = std::make_unique<Webhooks>(db_, workers_, app::Capabilities::scope_minter(), Options{},
                                        [this]() -> const KeyEncryption& { return keks_; });
  }
  void TearDown() override {
    hooks_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string endpoint(const std::string& tenant, std::vector<std::string> types, bool enabled = true) {
    nlohmann::json f = {{"url", "https://example.com/"}, {"event_types", types}, {"enabled", enabled}};
    return hooks_->create_endpoint(db::testing::TestScopes::mint(tenant), f).at("id").get<std::string>();
  }
  size_t count(const std::string& sql) {
    return static_cast<size_t>(
        db_->read_platform([&](db::Tx& tx) { return tx.query(sql).rows.at(0).integer(0); }));
  }

  std::filesystem::path dir_;
  std::unique_ptr<db::ConnectionFactory> factory_;
  std::shared_ptr<db::Database> db_;
  WorkerPool workers_{1};
  KeyEncryption keks_{std::string(32, 'k')};
  std::unique_ptr<Webhooks> hooks_;
};

TEST_F(FanOutTest, OneDeliveryPerEventAndMatchingEnabledEndpointOfItsTenant) {
  const std::string prefix = endpoint("a", {"crm.*"}), exact = endpoint("a", {"crm.contact.created"}),
                    all = endpoint("a", {"*"}), cms = endpoint("a", {"cms.*"});
  endpoint("a", {"*"}, false);  // disabled
  const std::string other = endpoint("b", {"*"});
  const std::string now = format_rfc3339(Clock::now());
  std::vector<Event> batch = {
      {1, new_uuid_v7(), "a", "crm.contact.created", now, {{"contact", {{"id", "c1"}}}}},
      {2, new_uuid_v7(), "a", "cms.entry.published", now, nlohmann::json::object()},
      {3, new_uuid_v7(), "b", "crm.deal.won", now, nlohmann::json::object()},
      {4, new_uuid_v7(), "", "tenant.created", now, nlohmann::json::object()},
      {5, new_uuid_v7(), "a", "crm.contact.created", "2000-01-01T00:00:00.000000Z",
       nlohmann::json::object()}};  // before the endpoints existed
  const size_t n = db_->write_platform([&](db::Tx& tx) { return hooks_->fan_out(tx, batch); });
  EXPECT_EQ(n, 6u);
  auto endpoints_of = [&](const std::string& event_id) {
    return db_->read_platform([&](db::Tx& tx) {
      std::set<std::string> out;
      for (const auto& r :
           tx.query("SELECT endpoint_id FROM cdx_db.webhook_deliveries WHERE event_id = $1", {event_id}).rows)
        out.insert(r.text(0));
      return out;
    });
  };
  EXPECT_EQ(endpoints_of(batch[0].id), (std::set<std::string>{prefix, exact, all}));
  EXPECT_EQ(endpoints_of(batch[1].id), (std::set<std::string>{all, cms}));
  EXPECT_EQ(endpoints_of(batch[2].id), (std::set<std::string>{other}));
  EXPECT_TRUE(endpoints_of(batch[3].id).empty());
  EXPECT_TRUE(endpoints_of(batch[4].id).empty());
  // The body is the Standard Webhooks payload, the id the same for every endpoint of an event.
  auto row = db_->read_platform([&](db::Tx& tx) {
    return tx
        .query("SELECT msg_id, payload, status FROM cdx_db.webhook_deliveries WHERE event_id = $1 LIMIT 1",
               {batch[0].id})
        .rows.at(0);
  });
  EXPECT_EQ(row.text(0), "msg_" + batch[0].id);
  auto body = nlohmann::json::parse(row.text(1));
  EXPECT_EQ(body["type"], "crm.contact.created");
  EXPECT_EQ(body["timestamp"], now);
  EXPECT_EQ(body["data"]["contact"]["id"], "c1");
  EXPECT_EQ(row.text(2), "pending");
  // A rolled-back transaction (the feed's cursor did not move) leaves no delivery.
  EXPECT_THROW(db_->write_platform([&](db::Tx& tx) {
    hooks_->fan_out(tx, {batch[2]});
    throw std::runtime_error("cursor write failed");
  }),
               std::runtime_error);
  EXPECT_EQ(count("SELECT COUNT(*) FROM cdx_db.webhook_deliveries"), 6u);
  // Purging a tenant removes its endpoints and deliveries only.
  hooks_->purge_tenant(db::testing::TestScopes::mint("a"));
  EXPECT_EQ(count("SELECT COUNT(*) FROM cdx_db.webhook_deliveries"), 1u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM cdx_db.webhook_endpoints"), 1u);
}

// A batch's events are grouped by tenant: one endpoint lookup per tenant per batch, however the tenants'
// events interleave (a lookup per event, or per change of tenant, made the fan-out slow for busy logs).
TEST_F(FanOutTest, OneEndpointLookupPerTenantPerBatch) {
  const std::string a = endpoint("a", {"*"}), b = endpoint("b", {"*"});
  const std::string now = format_rfc3339(Clock::now());
  std::vector<Event> batch;
  for (int i = 0; i < 10; ++i)
    batch.push_back({i + 1, new_uuid_v7(), i % 2 ? "b" : "a", "crm.contact.created", now, {}});
  batch.push_back({11, new_uuid_v7(), "", "tenant.created", now, {}});
  const size_t before = hooks_->store().routes_read();
  EXPECT_EQ(db_->write_platform([&](db::Tx& tx) { return hooks_->fan_out(tx, batch); }), 10u);
  EXPECT_EQ(hooks_->store().routes_read() - before, 2u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM cdx_db.webhook_deliveries WHERE endpoint_id = '" + a + "'"), 5u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM cdx_db.webhook_deliveries WHERE endpoint_id = '" + b + "'"), 5u);
}

TEST_F(FanOutTest, SecretsAreSealedAtRest) {
  auto e = hooks_->create_endpoint(db::testing::TestScopes::mint("a"),
                                   {{"url", "https://example.com/"}, {"event_types", {"*"}}});
  const std::string secret = e.at("secret").get<std::string>();
  const std::string stored = db_->read_platform(
      [&](db::Tx& tx) { return tx.query("SELECT secret FROM cdx_db.webhook_endpoints").rows.at(0).text(0); });
  EXPECT_EQ(stored.find(secret.substr(6)), std::string::npos);
  auto s = hooks_->signing("a", e.at("id").get<std::string>());
  ASSERT_TRUE(s);
  EXPECT_EQ(s->keys, std::vector<std::string>{*secret_key(secret)});
}

// The platform stops modules before its worker pools: a job still running may call wake() (or change an
// endpoint, which calls the sender) while stop() runs and after it.
TEST_F(FanOutTest, TheSenderStaysSafeToCallWhileAndAfterItStops) {
  const std::string e = endpoint("a", {"*"});
  hooks_->start();
  std::atomic<bool> done{false};
  std::thread job([&] {
    while (!done) {
      hooks_->wake();
      hooks_->update_endpoint(db::testing::TestScopes::mint("a"), e, {{"description", "x"}});
    }
  });
  std::this_thread::sleep_for(50ms);
  hooks_->stop();
  std::this_thread::sleep_for(50ms);
  done = true;
  job.join();
  hooks_->wake();
  hooks_->delete_endpoint(db::testing::TestScopes::mint("a"), e);
  EXPECT_EQ(count("SELECT COUNT(*) FROM cdx_db.webhook_endpoints"), 0u);
}

// Idle, the sender sleeps until the next due delivery (at most a second) instead of looking every 100 ms;
// the fan-out's commit wakes it.
TEST_F(FanOutTest, AnIdleSenderSleepsUntilTheNextDueDelivery) {
  const std::string e = endpoint("a", {"*"});
  const int64_t later =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count() + 60'000;
  db_->write_platform([&](db::Tx& tx) {
    hooks_->store().insert_deliveries(tx, {{"a", e, "msg_1", "1", "webhook.test", "{}"}}, later);
  });
  hooks_->start();
  std::this_thread::sleep_for(1500ms);
  const size_t idle = hooks_->sender_steps();
  EXPECT_GE(idle, 1u);
  EXPECT_LE(idle, 4u);  // about one a second (a 100 ms poll: 15)
  hooks_->wake();       // what the fan-out does after its commit
  std::this_thread::sleep_for(100ms);
  EXPECT_GT(hooks_->sender_steps(), idle);
  hooks_->stop();
}

// The sender's claims and records, against the store.
class ClaimTest : public FanOutTest {
 protected:
  std::vector<std::string> queue(const std::string& tenant, const std::string& endpoint, int n, int64_t due) {
    std::vector<NewDelivery> rows;
    for (int i = 0; i < n; ++i) {
      const std::string id = new_uuid_v7();
      rows.push_back({tenant, endpoint, "msg_" + id, id, "webhook.test", "{}"});
    }
    return db_->write_platform([&](db::Tx& tx) { return store().insert_deliveries(tx, rows, due); });
  }
  std::vector<Claimed> claim(int64_t now, const Room& room) {
    return db_->write_platform([&](db::Tx& tx) { return store().claim(tx, now, now + 1000, room); });
  }
  size_t record(const Claimed& c, int64_t lease) {
    Attempt a;
    a.delivery_id = c.id, a.tenant_id = c.tenant_id, a.endpoint_id = c.endpoint_id;
    a.attempted_at = format_rfc3339(Clock::now());
    a.status = "failed", a.error = "timed out", a.tries = 1, a.lease = lease;
    return db_->write_platform([&](db::Tx& tx) { return store().record(tx, {a}); });
  }
  Store& store() { return hooks_->store(); }
  static Room room(int total, std::map<std::string, int> endpoint_load = {}) {
    Room r;
    r.total = total, r.per_endpoint = 32, r.per_tenant = 40, r.endpoint_load = std::move(endpoint_load);
    return r;
  }
};

TEST_F(ClaimTest, AClaimTakesOnlyWhatHasAFreeSlot) {
  queue("a", "e1", 50, 1000);
  queue("a", "e2", 20, 1000);
  queue("b", "e3", 5, 1000);
  // e1 holds 10 already: 22 more of it; tenant a at most 40 in all; b's 5; nothing over the total.
  auto got = claim(2000, room(100, {{"e1", 10}}));
  std::map<std::string, int> by;
  for (const auto& c : got) ++by[c.endpoint_id];
  EXPECT_LE(by["e1"], 22);
  EXPECT_GE(by["e1"], 20);
  EXPECT_EQ(by["e1"] + by["e2"], 40);
  EXPECT_EQ(by["e3"], 5);
  // The rest is neither leased nor moved: due for the next claim.
  EXPECT_EQ(count("SELECT COUNT(*) FROM cdx_db.webhook_deliveries WHERE lease_until IS NOT NULL"),
            got.size());
  EXPECT_EQ(count("SELECT COUNT(*) FROM cdx_db.webhook_deliveries WHERE lease_until IS NULL AND "
                  "next_attempt_at = 1000"),
            75u - got.size());
  EXPECT_EQ(claim(2000, room(3)).size(), 3u);
  EXPECT_TRUE(claim(500, room(100)).empty());  // not due yet
}

TEST_F(ClaimTest, TheNextDueDeliveryIsTheEarliestPendingOne) {
  auto next = [&](std::optional<int64_t> after) {
    return db_->read_platform([&](db::Tx& tx) { return store().next_due(tx, after); });
  };
  EXPECT_FALSE(next(std::nullopt));
  queue("a", "e1", 1, 5000);
  queue("a", "e2", 1, 7000);
  EXPECT_EQ(next(std::nullopt), 5000);
  // What is due by then and not claimed waits for a slot: the sender sleeps until what is due after it.
  EXPECT_EQ(next(5000), 7000);
  EXPECT_FALSE(next(7000));
  // A claimed one is due again at its lease's end (a crash: sent again).
  const Claimed c = claim(5000, room(1)).at(0);
  EXPECT_EQ(next(std::nullopt), 6000);
  // A claim whose candidates were cut off by its limit says more may be due.
  queue("b", "e3", 10, 1000);
  bool more = false;
  db_->write_platform([&](db::Tx& tx) { return store().claim(tx, 8000, 9000, room(1), &more); });
  EXPECT_TRUE(more);
  db_->write_platform([&](db::Tx& tx) { return store().claim(tx, 8000, 9000, room(100), &more); });
  EXPECT_FALSE(more);
}

TEST_F(ClaimTest, AnAttemptIsRecordedOnlyUnderItsLease) {
  queue("a", "e1", 1, 1000);
  const Claimed first = claim(2000, room(10)).at(0);
  EXPECT_EQ(first.lease, 3000);
  EXPECT_TRUE(claim(2999, room(10)).empty());  // leased: not due
  // The lease ran out (a stalled sender): claimed again; the first attempt's late outcome is not recorded.
  const Claimed second = claim(3000, room(10)).at(0);
  EXPECT_EQ(second.id, first.id);
  EXPECT_EQ(record(first, first.lease), 0u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM cdx_db.webhook_attempts"), 0u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM cdx_db.webhook_deliveries WHERE status = 'pending'"), 1u);
  EXPECT_EQ(record(second, second.lease), 1u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM cdx_db.webhook_attempts"), 1u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM cdx_db.webhook_deliveries WHERE status = 'failed'"), 1u);
}

TEST_F(ClaimTest, NoAttemptForADeliveryThatIsGone) {
  const std::string e = endpoint("a", {"*"});
  queue("a", e, 1, 1000);
  const Claimed c = claim(2000, room(10)).at(0);
  hooks_->delete_endpoint(db::testing::TestScopes::mint("a"), e);
  EXPECT_EQ(record(c, c.lease), 0u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM cdx_db.webhook_attempts"), 0u);
  // A tenant purged while an attempt is in flight: the attempt's outcome leaves no row behind either.
  const std::string e2 = endpoint("b", {"*"});
  queue("b", e2, 1, 1000);
  const Claimed c2 = claim(2000, room(10)).at(0);
  hooks_->purge_tenant(db::testing::TestScopes::mint("b"));
  EXPECT_EQ(record(c2, c2.lease), 0u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM cdx_db.webhook_attempts WHERE tenant_id = 'b'"), 0u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM cdx_db.webhook_deliveries WHERE tenant_id = 'b'"), 0u);
}

// A replay of a delivery whose attempt is in flight queues another attempt after that one (as Svix's resend
// does): the attempt in flight keeps its lease and its outcome is recorded; then the delivery is due at once.
TEST_F(ClaimTest, AReplayOfAnAttemptInFlightQueuesAnotherAfterIt) {
  const std::string id = queue("a", "e1", 1, 1000).at(0);
  const Claimed c = claim(2000, room(10)).at(0);
  auto requeue = [&](const std::string& tenant, int64_t now) {
    return db_->write_platform([&](db::Tx& tx) { return store().requeue(tx, tenant, id, now); });
  };
  EXPECT_EQ(requeue("a", 2500), Store::Requeue::kAfterTheAttemptInFlight);
  EXPECT_EQ(requeue("b", 2500), Store::Requeue::kNotFound);
  EXPECT_TRUE(claim(2600, room(10)).empty());  // never two attempts of it at once
  auto next = [&] { return db_->read_platform([&](db::Tx& tx) { return store().next_due(tx); }); };
  EXPECT_FALSE(next());               // nothing to wake for before the attempt is recorded
  EXPECT_EQ(record(c, c.lease), 1u);  // the attempt's outcome stands (an attempt row)...
  EXPECT_EQ(count("SELECT COUNT(*) FROM cdx_db.webhook_attempts"), 1u);
  // ...and the replay follows it: pending, due since the replay, a fresh schedule.
  EXPECT_EQ(count("SELECT COUNT(*) FROM cdx_db.webhook_deliveries WHERE status = 'pending' AND tries = 0 AND "
                  "next_attempt_at = 2500 AND lease_until IS NULL"),
            1u);
  const Claimed again = claim(2700, room(10)).at(0);
  EXPECT_EQ(again.id, id);
  // Idle or finished: pending again at once.
  EXPECT_EQ(record(again, again.lease), 1u);  // failed (the helper's outcome)
  EXPECT_EQ(requeue("a", 2800), Store::Requeue::kNow);
  EXPECT_EQ(count("SELECT COUNT(*) FROM cdx_db.webhook_deliveries WHERE status = 'pending' AND tries = 0 AND "
                  "next_attempt_at = 2800 AND lease_until IS NULL"),
            1u);
  // A lease that ran out is no one's: the replay takes it over, and the stale attempt is not recorded.
  const Claimed stale = claim(2800, room(10)).at(0);
  EXPECT_EQ(requeue("a", stale.lease + 1), Store::Requeue::kNow);
  EXPECT_EQ(record(stale, stale.lease), 0u);
}

TEST_F(ClaimTest, PruneDeletesFinishedDeliveriesPastTheCutoffWithTheirAttempts) {
  const int64_t now =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
  queue("a", "e1", 3, now);
  auto got = claim(now, room(10));
  ASSERT_EQ(got.size(), 3u);
  for (const auto& c : got) record(c, c.lease);  // finished: failed, one attempt each
  queue("a", "e1", 1, now);                      // pending
  // Finished a while ago: a cutoff after them takes the finished ones only.
  db_->write_platform([&](db::Tx& tx) {
    tx.query("UPDATE cdx_db.webhook_deliveries SET updated_at = '2020-01-01T00:00:00.000000Z'");
  });
  EXPECT_EQ(hooks_->prune(now - 60'000), 0u);  // made after the cutoff
  EXPECT_EQ(hooks_->prune(now + 60'000), 3u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM cdx_db.webhook_deliveries"), 1u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM cdx_db.webhook_attempts"), 0u);
  EXPECT_EQ(count("SELECT COUNT(*) FROM cdx_db.webhook_deliveries WHERE status = 'pending'"), 1u);
}

}  // namespace
}  // namespace cdx::webhooks
