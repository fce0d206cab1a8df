#include "db/outbox.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "common/ids.hpp"
#include "db/outbox_testing.hpp"
#include "db/testing.hpp"

namespace cdx::db {
namespace {

// A throwaway SQLite database with one table and the outbox.
class OutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    init_crypto();
    dir_ = std::filesystem::temp_directory_path() / ("cdx-outbox-" + random_token(10));
    factory_ = make_sqlite_factory(dir_.string());
    db_ = factory_->open("box_db");
    db_->migrate({{1, "things", "CREATE TABLE box_db.things (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL);"},
                  Outbox::migration(2, "box_db")});
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void change(const TenantScope& scope, const std::string& type, int n) {
    db_->write(scope, [&](Tx& tx) {
      tx.query("INSERT INTO box_db.things (id, tenant_id) VALUES ($1, $2)",
               {new_uuid_v7(), scope.tenant_id()});
      outbox_.append(tx, scope, type, {{"n", n}});
    });
  }
  // n events in one transaction, payload {"n": i}.
  void fill(int n) {
    db_->write(a_, [&](Tx& tx) {
      for (int i = 0; i < n; ++i) outbox_.append(tx, a_, "thing.created", {{"n", i}});
    });
  }
  int64_t pending() {
    return db_->read_platform([&](Tx& tx) {
      return tx.query("SELECT COUNT(*) FROM box_db.outbox WHERE delivered_at IS NULL").rows.at(0).integer(0);
    });
  }

  std::filesystem::path dir_;
  std::unique_ptr<ConnectionFactory> factory_;
  std::shared_ptr<Database> db_;
  Outbox outbox_{"box_db"};
  TenantScope a_ = testing::TestScopes::mint("tenant-a");
  TenantScope b_ = testing::TestScopes::mint("tenant-b");
};

TEST_F(OutboxTest, EventsCommitAndRollBackWithTheChange) {
  change(a_, "thing.created", 1);
  EXPECT_THROW(db_->write(a_,
                          [&](Tx& tx) {
                            outbox_.append(tx, a_, "thing.created", {{"n", 2}});
                            throw std::runtime_error("the change fails");
                          }),
               std::runtime_error);
  auto events = db_->read(a_, [&](Tx& tx) { return outbox_.list(tx, a_, std::nullopt, 50, std::nullopt); });
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, "thing.created");
  EXPECT_EQ(events[0].payload, nlohmann::json({{"n", 1}}));
  EXPECT_EQ(events[0].tenant_id, "tenant-a");
  EXPECT_EQ(events[0].id.size(), 36u);
}

TEST_F(OutboxTest, ListsAreTenantScopedNewestFirstAndFilterByTypeOrPrefix) {
  change(a_, "crm.deal.created", 1);
  change(a_, "crm.deal.won", 2);
  change(a_, "crm.contact.created", 3);
  change(b_, "crm.deal.created", 4);
  auto list = [&](std::optional<std::string> type, std::optional<int64_t> before = std::nullopt) {
    return db_->read(a_, [&](Tx& tx) { return outbox_.list(tx, a_, type, 50, before); });
  };
  auto all = list(std::nullopt);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].payload["n"], 3);
  EXPECT_EQ(all[2].payload["n"], 1);
  EXPECT_EQ(list("crm.deal.").size(), 2u);
  EXPECT_EQ(list("crm.deal.won").size(), 1u);
  EXPECT_EQ(list("crm.deal").size(), 0u);  // exact unless it ends in a dot
  EXPECT_EQ(list(std::nullopt, all[0].seq).size(), 2u);
}

TEST_F(OutboxTest, RelayMovesThePayloadTextInOrderOnceAndMarksDelivered) {
  for (int i = 0; i < 5; ++i) change(i % 2 ? b_ : a_, "thing.created", i);
  const std::string stored = db_->read_platform([&](Tx& tx) {
    return tx.query("SELECT payload FROM box_db.outbox ORDER BY seq LIMIT 1").rows.at(0).text(0);
  });
  OutboxRelay relay;
  relay.add_source(db_);
  std::vector<OutboxEvent> sunk;
  relay.set_sink(
      [&](const std::vector<OutboxEvent>& events) { sunk.insert(sunk.end(), events.begin(), events.end()); });
  EXPECT_EQ(relay.poll(), 5u);
  ASSERT_EQ(sunk.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(sunk[i].payload_text, R"({"n":)" + std::to_string(i) + "}");
    EXPECT_TRUE(sunk[i].payload.is_null());  // moved as text, never parsed
    EXPECT_EQ(sunk[i].schema, "box_db");
    EXPECT_EQ(sunk[i].tenant_id, i % 2 ? "tenant-b" : "tenant-a");
    EXPECT_EQ(sunk[i].type, "thing.created");
    if (i > 0) EXPECT_LT(sunk[i - 1].seq, sunk[i].seq);
  }
  EXPECT_EQ(sunk[0].payload_text, stored);  // as the outbox holds it
  EXPECT_EQ(pending(), 0);
  EXPECT_EQ(relay.poll(), 0u);  // nothing twice
  change(a_, "deal.won", 5);
  EXPECT_EQ(relay.poll(), 1u);
  ASSERT_EQ(sunk.size(), 6u);
  EXPECT_EQ(sunk[5].type, "deal.won");
  EXPECT_EQ(relay.delivered_total(), 6);
}

TEST_F(OutboxTest, PurgeRemovesOnlyTheTenantsEvents) {
  change(a_, "x", 1);
  change(b_, "x", 2);
  db_->write(a_, [&](Tx& tx) { outbox_.purge_tenant(tx, a_); });
  EXPECT_EQ(pending(), 1);
  auto left = db_->read(b_, [&](Tx& tx) { return outbox_.list(tx, b_, std::nullopt, 50, std::nullopt); });
  EXPECT_EQ(left.size(), 1u);
}

TEST_F(OutboxTest, ASinkThatThrowsLeavesEverythingPendingAndALaterPollMovesIt) {
  for (int i = 0; i < 3; ++i) change(a_, "thing.created", i);
  OutboxRelay relay;
  relay.add_source(db_);
  bool down = true;
  int calls = 0;
  std::vector<std::string> texts;
  relay.set_sink([&](const std::vector<OutboxEvent>& events) {
    ++calls;
    if (down) throw std::runtime_error("event log down");
    for (const auto& e : events) texts.push_back(e.payload_text);
  });
  EXPECT_EQ(relay.poll(), 0u);
  EXPECT_EQ(relay.poll(), 0u);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(pending(), 3);
  EXPECT_EQ(relay.delivered_total(), 0);
  down = false;
  EXPECT_EQ(relay.poll(), 3u);
  EXPECT_EQ(texts, (std::vector<std::string>{R"({"n":0})", R"({"n":1})", R"({"n":2})"}));
  EXPECT_EQ(pending(), 0);
  EXPECT_EQ(relay.poll(), 0u);
  EXPECT_EQ(calls, 3);  // an empty outbox calls no sink
}

TEST_F(OutboxTest, AtLeastOnceASinkThatTookABatchAndThrewGetsItAgain) {
  for (int i = 0; i < 3; ++i) change(a_, "thing.created", i);
  OutboxRelay relay;
  relay.add_source(db_);
  std::vector<std::string> ids;
  bool fail = true;
  relay.set_sink([&](const std::vector<OutboxEvent>& events) {
    for (const auto& e : events) ids.push_back(e.id);  // recorded, then the answer is lost
    if (fail) throw std::runtime_error("connection reset");
  });
  EXPECT_EQ(relay.poll(), 0u);
  fail = false;
  EXPECT_EQ(relay.poll(), 3u);
  ASSERT_EQ(ids.size(), 6u);  // the same events again, same ids (the log skips the repeats)
  for (int i = 0; i < 3; ++i) EXPECT_EQ(ids[i], ids[i + 3]);
  EXPECT_EQ(pending(), 0);
}

TEST_F(OutboxTest, BatchesLargerThanKBatchGoInOrderEachOnce) {
  const int n = 2 * OutboxRelay::kBatch + 10;
  fill(n);
  OutboxRelay relay;
  relay.add_source(db_);
  testing::LogProbe log;
  relay.set_sink(log.sink());
  EXPECT_EQ(relay.poll(), static_cast<size_t>(n));
  EXPECT_EQ(log.batches, (std::vector<size_t>{OutboxRelay::kBatch, OutboxRelay::kBatch, 10}));
  EXPECT_TRUE(log.saw_in_order(n));
  EXPECT_EQ(pending(), 0);
  EXPECT_EQ(relay.delivered_total(), n);
  EXPECT_EQ(relay.poll(), 0u);
}

TEST_F(OutboxTest, ASinkThatThrowsOnALaterBatchKeepsTheEarlierOnesMoved) {
  const int n = 2 * OutboxRelay::kBatch + 10;
  fill(n);
  OutboxRelay relay;
  relay.add_source(db_);
  testing::LogProbe log{.fail_call = 2};  // the second batch
  relay.set_sink(log.sink());
  EXPECT_EQ(relay.poll(), static_cast<size_t>(OutboxRelay::kBatch));
  EXPECT_EQ(pending(), n - OutboxRelay::kBatch);
  EXPECT_EQ(relay.poll(), static_cast<size_t>(n - OutboxRelay::kBatch));
  EXPECT_TRUE(log.saw_in_order(n));  // the first batch not again: it was marked
  EXPECT_EQ(pending(), 0);
}

TEST_F(OutboxTest, DeliveredRowsArePrunedOnceAMinuteNotEveryFewPolls) {
  auto old_row = [&](const std::string& id) {
    db_->write_platform([&](Tx& tx) {
      tx.query(
          "INSERT INTO box_db.outbox (id, tenant_id, type, payload, created_at, delivered_at) "
          "VALUES ($1, 'tenant-a', 'x', '{}', '2020-01-01T00:00:00Z', '2020-01-01T00:00:01Z')",
          {id});
    });
  };
  auto rows = [&] {
    return db_->read_platform(
        [&](Tx& tx) { return tx.query("SELECT COUNT(*) FROM box_db.outbox").rows.at(0).integer(0); });
  };
  old_row("old-1");
  change(a_, "thing.created", 1);  // delivered now: kept for kRetentionSeconds
  OutboxRelay relay;
  relay.add_source(db_);
  EXPECT_EQ(relay.poll(), 1u);  // the first poll prunes
  EXPECT_EQ(rows(), 1);
  old_row("old-2");
  for (int i = 0; i < 100; ++i) {
    change(a_, "thing.created", i);
    relay.poll();
  }
  EXPECT_EQ(rows(), 102);  // not pruned again within the minute, however many polls

  // Once the interval has passed, the next poll prunes, whether or not it moves anything.
  OutboxRelay quick(std::chrono::milliseconds(500));
  quick.add_source(db_);
  EXPECT_EQ(quick.poll(), 0u);  // its first poll prunes old-2
  EXPECT_EQ(rows(), 101);
  old_row("old-3");
  EXPECT_EQ(quick.poll(), 0u);
  EXPECT_EQ(rows(), 102);  // too soon
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_EQ(quick.poll(), 0u);
  EXPECT_EQ(rows(), 101);
}

// A CSV import inserts its outbox rows itself (one statement a batch) and marks its transaction with
// mark_written: its commit must wake the relay as append()'s does, or its events wait for the fallback look.
TEST_F(OutboxTest, ACommitThatMarkedOutboxRowsWakesTheRelayAndNoOtherDoes) {
  int wakes = 0;
  db_->set_commit_hook([&] { ++wakes; });
  auto raw_insert = [&](Tx& tx) {
    tx.query(
        "INSERT INTO box_db.outbox (id, tenant_id, type, payload, created_at) "
        "VALUES ($1, $2, 'thing.created', '{}', '2026-01-01T00:00:00Z')",
        {new_uuid_v7(), a_.tenant_id()});
  };
  db_->write(a_, [&](Tx& tx) { raw_insert(tx); });
  EXPECT_EQ(wakes, 0);  // rows written behind the outbox's back: nothing tells the relay
  db_->write(a_, [&](Tx& tx) {
    raw_insert(tx);
    outbox_.mark_written(tx);
  });
  EXPECT_EQ(wakes, 1);
  db_->write(a_, [&](Tx& tx) {
    tx.query("INSERT INTO box_db.things (id, tenant_id) VALUES ($1, $2)", {new_uuid_v7(), a_.tenant_id()});
  });
  EXPECT_EQ(wakes, 1);  // a write without events wakes nothing, even after a marked one
  change(a_, "thing.updated", 3);
  EXPECT_EQ(wakes, 2);  // append() marks it the same way
  EXPECT_EQ(pending(), 3);
}

TEST(ScanPayload, ReadsTheSubjectAndTheActorAsTheParsedObjectWould) {
  const auto facts = scan_payload(
      R"({"actor":{"id":"u1","type":"user"},"changed":["a"],"contact":{"custom":{"id":7},"id":"c1","tags":["x]"]}})");
  ASSERT_TRUE(facts);
  EXPECT_EQ(facts->subject, "c1");
  EXPECT_EQ(facts->actor, R"({"id":"u1","type":"user"})");
  // The first member object with a string id; none; an actor that is null.
  EXPECT_EQ(scan_payload(R"({"a":{"id":3},"b":{"id":"b1"},"c":{"id":"c1"}})")->subject, "b1");
  EXPECT_EQ(scan_payload(R"({"actor":{"id":"u1"},"contact":{"id":"c1"},"id":"d1"})")->subject,
            "d1");  // deleted
  EXPECT_FALSE(scan_payload(R"({"n":1,"s":"{\"id\":\"x\"}"})")->subject);
  EXPECT_FALSE(scan_payload(R"({"n":1})")->actor);
  EXPECT_EQ(scan_payload(R"({"actor":null})")->actor, "null");
  EXPECT_TRUE(scan_payload(" { } "));
  // Not one object, or an escape where a name or the id is read: the caller parses.
  for (const char* bad : {"", "[]", "{", R"({"a":1}x)", R"({"a":[}])", R"({"a" 1})", R"({"id\u0041":1})",
                          R"({"c":{"id":"c\"1"}})", "{\"a\":\"\x01\"}", R"({"a":{"b":1})"})
    EXPECT_FALSE(scan_payload(bad)) << bad;
}

}  // namespace
}  // namespace cdx::db
