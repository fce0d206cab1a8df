// The outbox and the Idempotency-Key store on a live PostgreSQL (CDX_TEST_DATABASE_URL): events written in
// tenant transactions as cdx_app, under forced RLS for the tenant tables, are read by the relay across
// tenants; idempotency keys stay behind RLS. Each test works in a schema of its own and drops it.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>

#include "common/error.hpp"
#include "common/ids.hpp"
#include "common/worker_pool.hpp"
#include "core/store.hpp"
#include "db/outbox.hpp"
#include "db/outbox_testing.hpp"
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
    db_->migrate({{1,
                   "things",
                   "CREATE TABLE " + schema_ + ".things (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL);",
                   {schema_ + ".things"}},
                  Outbox::migration(2, schema_),
                  kit::Idempotency::migration(3, schema_),
                  Outbox::pending_index_migration(4, schema_),
                  Outbox::queue_migration(5, schema_)});
  }
  void TearDown() override {
    PGconn* c = PQconnectdb(url_.c_str());
    PQsetNoticeProcessor(
        c, [](void*, const char*) {}, nullptr);
    for (const std::string& s : {schema_, schema_ + "_up"})
      PQclear(PQexec(c, ("DROP SCHEMA IF EXISTS " + s + " CASCADE").c_str()));
    PQfinish(c);
  }

  void change(const TenantScope& scope, int n) {
    db_->write(scope, [&](Tx& tx) {
      tx.query("INSERT INTO " + schema_ + ".things (id, tenant_id) VALUES ($1, $2)",
               {new_uuid_v7(), scope.tenant_id()});
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
  std::vector<std::string> seen;
  relay.set_sink([&](const std::vector<OutboxEvent>& events) {
    for (const auto& e : events) {
      EXPECT_TRUE(e.payload.is_null());  // moved as text
      seen.push_back(e.payload_text);
    }
  });
  EXPECT_EQ(relay.poll(), 6u);
  EXPECT_EQ(seen, (std::vector<std::string>{R"({"n":0})", R"({"n":1})", R"({"n":2})", R"({"n":3})",
                                            R"({"n":4})", R"({"n":5})"}));
  EXPECT_EQ(relay.poll(), 0u);
  EXPECT_EQ(seen.size(), 6u);
}

TEST_F(OutboxPgTest, ACommitThatMarkedOutboxRowsWakesTheRelay) {
  outbox_ = std::make_unique<Outbox>(schema_);
  std::atomic<int> wakes{0};
  db_->set_commit_hook([&] { ++wakes; });
  auto raw_insert = [&](Tx& tx) {
    tx.query("INSERT INTO " + schema_ +
                 ".outbox (id, tenant_id, type, payload, created_at) VALUES ($1, $2, 'thing.created', '{}', "
                 "'2026-01-01T00:00:00Z')",
             {new_uuid_v7(), a_.tenant_id()});
  };
  db_->write(a_, [&](Tx& tx) { raw_insert(tx); });
  EXPECT_EQ(wakes.load(), 0);
  db_->write(a_, [&](Tx& tx) {
    raw_insert(tx);
    outbox_->mark_written(tx);
  });
  EXPECT_EQ(wakes.load(), 1);
  EXPECT_THROW(db_->write(a_,
                          [&](Tx& tx) {
                            raw_insert(tx);
                            outbox_->mark_written(tx);
                            throw std::runtime_error("the change fails");
                          }),
               std::runtime_error);
  EXPECT_EQ(wakes.load(), 1);
  change(a_, 1);
  EXPECT_EQ(wakes.load(), 2);
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

TEST_F(OutboxPgTest, ASinkThatThrowsLeavesTheClaimedBatchPendingAndALaterPollMovesIt) {
  outbox_ = std::make_unique<Outbox>(schema_);
  const int n = OutboxRelay::kBatch + 20;
  db_->write(a_, [&](Tx& tx) {
    for (int i = 0; i < n; ++i) outbox_->append(tx, a_, "thing.created", {{"n", i}});
  });
  OutboxRelay relay;
  relay.add_source(db_);
  testing::LogProbe log{.fail_call = 2};  // the second batch
  relay.set_sink(log.sink());
  auto pending = [&] {
    return db_->read_platform([&](Tx& tx) {
      return tx.query("SELECT COUNT(*) FROM " + schema_ + ".outbox_queue").rows.at(0).integer(0);
    });
  };
  EXPECT_EQ(relay.poll(), static_cast<size_t>(OutboxRelay::kBatch));  // its mark rolled back with the claim
  EXPECT_EQ(pending(), 20);
  EXPECT_EQ(relay.poll(), 20u);
  EXPECT_EQ(pending(), 0);
  EXPECT_TRUE(log.saw_in_order(n));
  EXPECT_EQ(relay.delivered_total(), n);
}

TEST_F(OutboxPgTest, TwoRelaysOnOneOutboxMoveEachRowOnce) {
  outbox_ = std::make_unique<Outbox>(schema_);
  const int n = 2 * OutboxRelay::kBatch + 500;
  for (int at = 0; at < n; at += 1000)
    db_->write(a_, [&](Tx& tx) {
      for (int i = at; i < std::min(n, at + 1000); ++i) outbox_->append(tx, a_, "thing.created", {{"n", i}});
    });
  // Two replicas: their own pools on the one database.
  StorageConfig config;
  config.database_url = url_;
  config.pool_size = 4;
  auto other_factory = make_postgres_factory(config);
  auto other_db = other_factory->open(schema_);
  std::mutex mu;
  std::vector<int> sunk;
  OutboxRelay relays[2];
  relays[0].add_source(db_);
  relays[1].add_source(other_db);
  for (auto& relay : relays)
    relay.set_sink([&](const std::vector<OutboxEvent>& events) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // both hold a claim at once
      std::lock_guard lock(mu);
      for (const auto& e : events) sunk.push_back(nlohmann::json::parse(e.payload_text)["n"].get<int>());
    });
  std::atomic<size_t> moved{0};
  std::vector<std::thread> threads;
  for (auto& relay : relays)
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) moved += relay.poll();
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(moved.load(), static_cast<size_t>(n));
  std::sort(sunk.begin(), sunk.end());
  ASSERT_EQ(sunk.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) ASSERT_EQ(sunk[i], i);
}

TEST_F(OutboxPgTest, PruneDeletesTheOldestMovedRunBySeqAndStopsAtAPendingOrYoungerRow) {
  outbox_ = std::make_unique<Outbox>(schema_);
  // A row as a module writes it (the trigger queues it), then moved (out of the queue) unless `pending`.
  auto row = [&](const std::string& id, const char* created_at, bool pending) {
    db_->write_platform([&](Tx& tx) {
      const int64_t seq = tx.query("INSERT INTO " + schema_ +
                                       ".outbox (id, tenant_id, type, payload, created_at) VALUES ($1, "
                                       "'tenant-a', 'x', '{}', $2) RETURNING seq",
                                   {id, created_at})
                              .rows.at(0)
                              .integer(0);
      if (!pending) tx.query("DELETE FROM " + schema_ + ".outbox_queue WHERE seq = $1", {seq});
    });
  };
  auto ids = [&] {
    std::vector<std::string> out;
    db_->read_platform([&](Tx& tx) {
      for (const auto& r : tx.query("SELECT id FROM " + schema_ + ".outbox ORDER BY seq").rows)
        out.push_back(r.text(0));
    });
    return out;
  };
  const char* old = "2020-01-01T00:00:00Z";
  row("old-1", old, false);
  row("old-2", old, false);
  row("pending", old, true);  // not moved: ends the walk
  row("old-3", old, false);   // waits behind it
  OutboxRelay relay;          // its first poll prunes, after its batch
  relay.add_source(db_);
  testing::LogProbe down{.fail_call = 1};  // so "pending" stays queued
  relay.set_sink(down.sink());
  relay.poll();
  EXPECT_EQ(ids(), (std::vector<std::string>{"pending", "old-3"}));
  // A run longer than one page is deleted whole, up to a row too young.
  db_->write_platform([&](Tx& tx) {
    tx.query("DELETE FROM " + schema_ + ".outbox");
    tx.query("INSERT INTO " + schema_ +
             ".outbox (id, tenant_id, type, payload, created_at) SELECT 'p' || g, 'tenant-a', 'x', '{}', "
             "'2020-01-01T00:00:00Z' FROM generate_series(1, 25000) g");
    tx.query("DELETE FROM " + schema_ + ".outbox_queue");
  });
  row("young", "2999-01-01T00:00:00Z", false);
  row("old-after-young", old, false);
  OutboxRelay again;
  again.add_source(db_);
  again.poll();
  EXPECT_EQ(ids(), (std::vector<std::string>{"young", "old-after-young"}));
}

TEST_F(OutboxPgTest, EveryInsertIsQueuedAndAQueuedRowWhoseEventIsGoneIsDroppedNotSunk) {
  outbox_ = std::make_unique<Outbox>(schema_);
  change(a_, 1);
  change(b_, 2);
  // A many-row insert of its own (what a CSV import does) is queued as well.
  db_->write_platform([&](Tx& tx) {
    tx.query(
        "INSERT INTO " + schema_ +
        ".outbox (id, tenant_id, type, payload, created_at) SELECT 'bulk-' || g, 'tenant-a', "
        "'thing.created', '{\"n\":' || (2 + g) || '}', '2026-01-01T00:00:00Z' FROM generate_series(1, 3) g");
  });
  auto queued = [&] {
    return db_->read_platform([&](Tx& tx) {
      return tx.query("SELECT COUNT(*) FROM " + schema_ + ".outbox_queue").rows.at(0).integer(0);
    });
  };
  EXPECT_EQ(queued(), 5);
  db_->write(b_, [&](Tx& tx) { outbox_->purge_tenant(tx, b_); });
  OutboxRelay relay;
  relay.add_source(db_);
  testing::LogProbe log;
  relay.set_sink(log.sink());
  EXPECT_EQ(relay.poll(), 5u);  // b's queued seq is taken off the queue with the batch
  EXPECT_EQ(queued(), 0);
  EXPECT_EQ(log.seen, (std::vector<int>{1, 3, 4, 5}));
  EXPECT_EQ(relay.poll(), 0u);
}

TEST_F(OutboxPgTest, TheQueueMigrationQueuesWhatAnOlderOutboxHadPendingAndNothingMoved) {
  const std::string up = schema_ + "_up";
  auto db = factory_->open(up);
  std::vector<Migration> before{Outbox::migration(1, up), Outbox::pending_index_migration(2, up)};
  db->migrate(before);
  db->write_platform([&](Tx& tx) {
    tx.query("INSERT INTO " + up +
             ".outbox (id, tenant_id, type, payload, created_at, delivered_at) VALUES "
             "('moved', 'tenant-a', 'x', '{\"n\":0}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:01Z'), "
             "('pending-1', 'tenant-a', 'x', '{\"n\":1}', '2026-01-01T00:00:00Z', NULL), "
             "('pending-2', 'tenant-a', 'x', '{\"n\":2}', '2026-01-01T00:00:00Z', NULL)");
  });
  before.push_back(Outbox::queue_migration(3, up));
  db->migrate(before);
  OutboxRelay relay;
  relay.add_source(db);
  testing::LogProbe log;
  relay.set_sink(log.sink());
  EXPECT_EQ(relay.poll(), 2u);
  EXPECT_EQ(log.seen, (std::vector<int>{1, 2}));
  Outbox outbox(up);  // and what is written after it is queued by the trigger
  db->write(a_, [&](Tx& tx) { outbox.append(tx, a_, "x", {{"n", 3}}); });
  // A relay of the version before (still running during a rolling upgrade) claims pending rows by
  // delivered_at: it finds none, before or after the new relay's poll.
  auto old_claim = [&] {
    return db->write_platform([&](Tx& tx) {
      return tx
          .query("SELECT seq FROM " + up + ".outbox WHERE delivered_at IS NULL ORDER BY seq LIMIT 10 FOR " +
                 "UPDATE SKIP LOCKED")
          .rows.size();
    });
  };
  EXPECT_EQ(old_claim(), 0u);
  EXPECT_EQ(relay.poll(), 1u);
  EXPECT_EQ(log.seen, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(old_claim(), 0u);
}

// core::Store::record_events on PostgreSQL, in a database of its own (the log is cdx_db.events).
class EventLogPgTest : public ::testing::Test {
 protected:
  void SetUp() override {
    init_crypto();
    const char* base = std::getenv("CDX_TEST_DATABASE_URL");
    ASSERT_TRUE(base != nullptr && *base != '\0') << "CDX_TEST_DATABASE_URL is not set";
    base_ = base;
    std::random_device rd;
    name_ = "eventlog_" + std::to_string(rd() % 1000000000u);
    admin("CREATE DATABASE " + name_);
    StorageConfig config;
    config.database_url = base_.substr(0, base_.rfind('/') + 1) + name_;
    config.pool_size = 2;
    factory_ = make_postgres_factory(config);
    db_ = factory_->open("cdx_db");
    db_->migrate(
        {{1,
          "platform event log",
          "",
          {},
          "CREATE TABLE cdx_db.events (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id TEXT NOT NULL "
          "UNIQUE, tenant_id TEXT NOT NULL, type TEXT NOT NULL, source TEXT NOT NULL, subject TEXT, actor "
          "TEXT, payload TEXT NOT NULL, created_at TEXT NOT NULL, recorded_at TEXT NOT NULL);"}});
    store_ = std::make_unique<core::Store>(db_);
  }
  void TearDown() override {
    store_.reset();
    db_.reset();
    factory_.reset();
    if (!name_.empty()) admin("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  }
  void admin(const std::string& sql) {
    PGconn* c = PQconnectdb(base_.c_str());
    PQsetNoticeProcessor(
        c, [](void*, const char*) {}, nullptr);
    PQclear(PQexec(c, sql.c_str()));
    PQfinish(c);
  }
  static OutboxEvent event(std::string text) {
    OutboxEvent e;
    e.id = new_uuid_v7();
    e.schema = "crm_db";
    e.tenant_id = "t1";
    e.type = "crm.contact.created";
    e.created_at = "2026-12-05T08:00:00.000000Z";
    e.payload_text = std::move(text);
    return e;
  }

  std::string base_, name_;
  std::unique_ptr<ConnectionFactory> factory_;
  std::shared_ptr<Database> db_;
  std::unique_ptr<core::Store> store_;
};

TEST_F(EventLogPgTest, RecordsInOrderSkipsDuplicatesAndKeepsThePayloadText) {
  // Quotes, backslashes, braces, commas and non-ASCII text reach the log unchanged.
  const std::string tricky =
      R"({"actor":{"id":"u\"1","type":"user"},"note":{"id":"n1","text":"a,b}{\\ \"é\" NULL"}})";
  std::vector<OutboxEvent> batch;
  for (int i = 0; i < 20; ++i) batch.push_back(event(i == 7 ? tricky : R"({"n":)" + std::to_string(i) + "}"));
  store_->record_events(batch);
  std::vector<OutboxEvent> again{batch[3], event(R"({"n":20})"), batch[3], batch[0]};
  store_->record_events(again);
  store_->record_events({});
  auto rows = db_->read_platform([&](Tx& tx) {
    return tx.query("SELECT id, subject, actor, payload FROM cdx_db.events ORDER BY seq").rows;
  });
  ASSERT_EQ(rows.size(), 21u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(rows[i].text(0), batch[i].id);
  EXPECT_EQ(rows[7].text(3), tricky);
  EXPECT_EQ(rows[7].text(1), "n1");
  EXPECT_EQ(rows[7].text(2), R"({"id":"u\"1","type":"user"})");
  EXPECT_TRUE(rows[0].is_null(1));
  EXPECT_TRUE(rows[0].is_null(2));
  EXPECT_EQ(rows[20].text(3), R"({"n":20})");
}

// COPY's text format: payloads with every character it escapes, non-ASCII text, NULL subject and actor, ids
// already logged and ids repeated within a batch (left out), the batch's order kept.
TEST_F(EventLogPgTest, CopyKeepsEscapedTextNullsAndOrderAndSkipsLoggedIds) {
  // Raw tab, newline and carriage return as JSON whitespace; backslashes, \N and \t as text; escaped
  // control characters in the subject and the actor (they reach the columns unescaped); non-ASCII text.
  const std::string whitespace =
      "{\t\"contact\":\r\n{\"id\":\"c\\\\N\\t1\",\"name\":\"Zoë 東京 🎉\"},\n"
      "\"actor\":{\"id\":\"u\\n1\",\"type\":\"user\"}}";
  const std::string backslashes = R"({"path":"C:\\temp\\new\\N","text":"\\\\ \t \\t \n \r"})";
  const std::string no_subject = R"({"n":1})";
  std::vector<OutboxEvent> batch{event(whitespace), event(backslashes), event(no_subject)};
  for (int i = 0; i < 50; ++i) batch.push_back(event("{\"i\":" + std::to_string(i) + ",\"t\":\"\\t\"}\n"));
  store_->record_events({batch[1]});  // logged first, then redelivered within the next batch
  std::vector<OutboxEvent> next = batch;
  next.insert(next.begin() + 10, batch[5]);  // a repeat within the batch
  next.push_back(batch[1]);
  store_->record_events(next);
  store_->record_events(next);  // all of it again: nothing new
  auto rows = db_->read_platform([&](Tx& tx) {
    return tx.query("SELECT id, subject, actor, payload, source, tenant_id FROM cdx_db.events ORDER BY seq")
        .rows;
  });
  ASSERT_EQ(rows.size(), batch.size());
  EXPECT_EQ(rows[0].text(0), batch[1].id);
  EXPECT_EQ(rows[0].text(3), backslashes);
  EXPECT_TRUE(rows[0].is_null(1));
  EXPECT_TRUE(rows[0].is_null(2));
  EXPECT_EQ(rows[1].text(0), batch[0].id);
  EXPECT_EQ(rows[1].text(3), whitespace);
  EXPECT_EQ(rows[1].text(1), "c\\N\t1");
  EXPECT_EQ(rows[1].text(2), "{\"id\":\"u\\n1\",\"type\":\"user\"}");
  EXPECT_EQ(rows[2].text(0), batch[2].id);
  EXPECT_EQ(rows[2].text(3), no_subject);
  EXPECT_TRUE(rows[2].is_null(1));
  EXPECT_TRUE(rows[2].is_null(2));
  for (size_t i = 3; i < batch.size(); ++i) {
    EXPECT_EQ(rows[i].text(0), batch[i].id) << i;
    EXPECT_EQ(rows[i].text(3), batch[i].payload_text) << i;
    EXPECT_EQ(rows[i].text(4), "crm_db");
    EXPECT_EQ(rows[i].text(5), "t1");
  }
}

}  // namespace
}  // namespace cdx::db
