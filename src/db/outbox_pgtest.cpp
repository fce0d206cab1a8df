// The outbox and the Idempotency-Key store on a live PostgreSQL (CDX_TEST_DATABASE_URL): events written in
// tenant transactions as cdx_app, under forced RLS for the tenant tables, are read by the relay across
// tenants; idempotency keys stay behind RLS. Each test works in a schema of its own and drops it.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <cstdlib>
#include <random>
#include <thread>

#include "common/error.hpp"
#include "common/ids.hpp"
#include "common/worker_pool.hpp"
#include "db/outbox.hpp"
#include "db/testing.hpp"
#include "kit/idempotency.hpp"

namespace cdx::db {
namespace {

class OutboxPgTest : public ::testing::Test {
 protected:
  void SetUp() override {
    init_crypto();
    const char* url = std::getenv("CDX_TEST_DATABASE_URL");
    ASSERT_TRUE(url != nullptr && *url != '\0') << "CDX_TEST_DATABASE_URL is not set";
    url_ = url;
    std::random_device rd;
    schema_ = "pgbox_" + std::to_string(rd() % 1000000000u);
    StorageConfig config;
    config.database_url = url_;
    config.pool_size = 4;
    factory_ = make_postgres_factory(config);
    db_ = factory_->open(schema_);
    db_->migrate({{1, "things",
                   "CREATE TABLE " + schema_ + ".things (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL);",
                   {schema_ + ".things"}},
                  Outbox::migration(2, schema_), kit::Idempotency::migration(3, schema_)});
  }
  void TearDown() override {
    PGconn* c = PQconnectdb(url_.c_str());
    PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
    PQclear(PQexec(c, ("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE").c_str()));
    PQfinish(c);
  }

  void change(const TenantScope& scope, int n) {
    db_->write(scope, [&](Tx& tx) {
      tx.query("INSERT INTO " + schema_ + ".things (id, tenant_id) VALUES ($1, $2)", {new_uuid_v7(), scope.tenant_id()});
      outbox_->append(tx, scope, "thing.created", {{"n", n}});
    });
  }

  std::string url_, schema_;
  std::unique_ptr<ConnectionFactory> factory_;
  std::shared_ptr<Database> db_;
  std::unique_ptr<Outbox> outbox_ = nullptr;
  TenantScope a_ = testing::TestScopes::mint("tenant-a");
  TenantScope b_ = testing::TestScopes::mint("tenant-b");
};

TEST_F(OutboxPgTest, TenantTransactionsAppendAndTheRelayDeliversEveryTenantInOrder) {
  outbox_ = std::make_unique<Outbox>(schema_);
  for (int i = 0; i < 6; ++i) change(i % 2 ? b_ : a_, i);
  EXPECT_THROW(db_->write(a_,
                          [&](Tx& tx) {
                            outbox_->append(tx, a_, "thing.created", {{"n", 99}});
                            throw std::runtime_error("rolled back");
                          }),
               std::runtime_error);
  auto mine = db_->read(a_, [&](Tx& tx) { return outbox_->list(tx, a_, std::nullopt, 50, std::nullopt); });
  ASSERT_EQ(mine.size(), 3u);
  for (const auto& e : mine) EXPECT_EQ(e.tenant_id, "tenant-a");
  OutboxRelay relay;
  relay.add_source(db_);
  std::vector<int> seen;
  relay.subscribe("thing.", [&](const OutboxEvent& e) { seen.push_back(e.payload["n"].get<int>()); });
  EXPECT_EQ(relay.poll(), 6u);
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(relay.poll(), 0u);
}

TEST_F(OutboxPgTest, IdempotencyKeysHoldUnderRlsAndConcurrentClaims) {
  kit::Idempotency idem(db_);
  const std::string route = "POST /things";
  const std::string h = kit::Idempotency::request_hash("POST /things", "{}");
  // The claim and the answer commit in one transaction.
  db_->write(a_, [&](Tx& tx) {
    idem.claim(tx, a_, route, "k", h);
    idem.store(tx, a_, route, "k", {201, "application/json", R"({"id":"1"})"});
  });
  auto replay = idem.lookup(a_, route, "k", h);
  ASSERT_TRUE(replay);
  EXPECT_EQ(replay->body, R"({"id":"1"})");
  EXPECT_FALSE(idem.lookup(b_, route, "k", h));  // another tenant: its own key space

  // Eight simultaneous first attempts, each holding its transaction open a moment after the claim: the
  // first commits, the others wait on its row and then fail on it, and would replay its answer.
  std::atomic<int> committed{0}, lost{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      try {
        db_->write(a_, [&](Tx& tx) {
          idem.claim(tx, a_, route, "race", h);
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          idem.store(tx, a_, route, "race", {201, "application/json", "{}"});
        });
        ++committed;
      } catch (const UniqueViolation&) {
        ++lost;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(committed.load(), 1);
  EXPECT_EQ(lost.load(), 7);
  EXPECT_TRUE(idem.lookup(a_, route, "race", h));
}

}  // namespace
}  // namespace cdx::db
