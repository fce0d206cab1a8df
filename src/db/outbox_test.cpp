#include "db/outbox.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/ids.hpp"
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

TEST_F(OutboxTest, RelayDeliversInOrderOnceAndMarksDelivered) {
  for (int i = 0; i < 5; ++i) change(i % 2 ? b_ : a_, "thing.created", i);
  OutboxRelay relay;
  relay.add_source(db_);
  std::vector<int> seen;
  std::vector<std::string> deals;
  relay.subscribe("", [&](const OutboxEvent& e) { seen.push_back(e.payload["n"].get<int>()); });
  relay.subscribe("deal.", [&](const OutboxEvent& e) { deals.push_back(e.type); });
  EXPECT_EQ(relay.poll(), 5u);
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_TRUE(deals.empty());
  EXPECT_EQ(pending(), 0);
  EXPECT_EQ(relay.poll(), 0u);  // nothing twice
  change(a_, "deal.won", 5);
  EXPECT_EQ(relay.poll(), 1u);
  EXPECT_EQ(deals, (std::vector<std::string>{"deal.won"}));
  EXPECT_EQ(relay.delivered_total(), 6);
}

TEST_F(OutboxTest, AFailingSubscriberStopsDeliveryThereAndItIsRetried) {
  change(a_, "thing.created", 1);
  change(a_, "thing.created", 2);
  change(a_, "thing.created", 3);
  OutboxRelay relay;
  relay.add_source(db_);
  std::vector<int> seen;
  int failures_left = 2;
  relay.subscribe("", [&](const OutboxEvent& e) {
    const int n = e.payload["n"].get<int>();
    if (n == 2 && failures_left > 0) {
      --failures_left;
      throw std::runtime_error("subscriber down");
    }
    seen.push_back(n);
  });
  EXPECT_EQ(relay.poll(), 1u);  // 1, then 2 fails: 3 waits behind it
  EXPECT_EQ(seen, (std::vector<int>{1}));
  EXPECT_EQ(relay.poll(), 0u);
  EXPECT_EQ(relay.poll(), 2u);  // 2 succeeds on its third attempt, then 3
  EXPECT_EQ(seen, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(relay.failed_total(), 2);
}

TEST_F(OutboxTest, APoisonEventIsParkedAfterMaxAttempts) {
  change(a_, "poison", 1);
  change(a_, "fine", 2);
  OutboxRelay relay;
  relay.add_source(db_);
  std::vector<std::string> seen;
  relay.subscribe("", [&](const OutboxEvent& e) {
    if (e.type == "poison") throw std::runtime_error("cannot handle");
    seen.push_back(e.type);
  });
  for (int i = 0; i < OutboxRelay::kMaxAttempts; ++i) relay.poll();
  EXPECT_EQ(seen, (std::vector<std::string>{"fine"}));
  EXPECT_EQ(pending(), 0);
  auto error = db_->read_platform([&](Tx& tx) {
    return tx.query("SELECT last_error, attempts FROM box_db.outbox WHERE type = 'poison'")
        .rows.at(0)
        .text(0);
  });
  EXPECT_EQ(error, "cannot handle");
}

TEST_F(OutboxTest, PurgeRemovesOnlyTheTenantsEvents) {
  change(a_, "x", 1);
  change(b_, "x", 2);
  db_->write(a_, [&](Tx& tx) { outbox_.purge_tenant(tx, a_); });
  EXPECT_EQ(pending(), 1);
  auto left = db_->read(b_, [&](Tx& tx) { return outbox_.list(tx, b_, std::nullopt, 50, std::nullopt); });
  EXPECT_EQ(left.size(), 1u);
}

TEST_F(OutboxTest, TheSinkGetsThePayloadTextAndOnlyWhatASubscriberReadsIsParsed) {
  change(a_, "thing.created", 1);
  change(a_, "deal.won", 2);
  const std::string stored = db_->read_platform([&](Tx& tx) {
    return tx.query("SELECT payload FROM box_db.outbox ORDER BY seq LIMIT 1").rows.at(0).text(0);
  });
  OutboxRelay relay;
  relay.add_source(db_);
  std::vector<OutboxEvent> sunk;
  relay.set_sink(
      [&](const std::vector<OutboxEvent>& events) { sunk.insert(sunk.end(), events.begin(), events.end()); });
  int headers = 0;
  std::vector<int> payloads;
  relay.subscribe(
      "", [&](const OutboxEvent&) { ++headers; }, OutboxRelay::Reads::kHeaders);
  relay.subscribe("deal.", [&](const OutboxEvent& e) { payloads.push_back(e.payload["n"].get<int>()); });
  EXPECT_EQ(relay.poll(), 2u);
  ASSERT_EQ(sunk.size(), 2u);
  EXPECT_EQ(sunk[0].payload_text, stored);  // as the outbox holds it, not dumped again
  EXPECT_TRUE(sunk[0].payload.is_null());   // nobody reads its payload: never parsed
  EXPECT_EQ(sunk[1].payload, nlohmann::json({{"n", 2}}));
  EXPECT_EQ(payload_text_of(sunk[1]), R"({"n":2})");
  EXPECT_EQ(headers, 2);
  EXPECT_EQ(payloads, (std::vector<int>{2}));
}

TEST_F(OutboxTest, ASinkThatThrowsLeavesTheBatchPending) {
  for (int i = 0; i < 3; ++i) change(a_, "thing.created", i);
  OutboxRelay relay;
  relay.add_source(db_);
  bool down = true;
  std::vector<std::string> ids;
  relay.set_sink([&](const std::vector<OutboxEvent>& events) {
    if (down) throw std::runtime_error("event log down");
    for (const auto& e : events) ids.push_back(e.id);
  });
  EXPECT_EQ(relay.poll(), 0u);
  EXPECT_EQ(pending(), 3);
  down = false;
  EXPECT_EQ(relay.poll(), 3u);
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(pending(), 0);
}

TEST_F(OutboxTest, BatchesAfterBatchesAreMarkedAndAParkedRowKeepsItsError) {
  // More than two batches in one poll; a poison event in the second.
  const int n = 2 * OutboxRelay::kBatch + 10, poison = OutboxRelay::kBatch + 7;
  db_->write(a_, [&](Tx& tx) {
    for (int i = 0; i < n; ++i) outbox_.append(tx, a_, i == poison ? "poison" : "thing.created", {{"n", i}});
  });
  OutboxRelay relay;
  relay.add_source(db_);
  size_t sunk = 0;
  relay.set_sink([&](const std::vector<OutboxEvent>& events) { sunk += events.size(); });
  std::vector<int> seen;
  relay.subscribe("", [&](const OutboxEvent& e) {
    if (e.type == "poison") throw std::runtime_error("cannot handle");
    seen.push_back(e.payload["n"].get<int>());
  });
  EXPECT_EQ(relay.poll(), static_cast<size_t>(poison));  // stops at the poison event
  EXPECT_EQ(pending(), n - poison);
  size_t later = 0;
  for (int i = 1; i < OutboxRelay::kMaxAttempts; ++i) later += relay.poll();
  EXPECT_EQ(later, static_cast<size_t>(n - poison - 1));  // parked on its last attempt, the rest follow
  EXPECT_EQ(pending(), 0);
  ASSERT_EQ(seen.size(), static_cast<size_t>(n - 1));
  for (size_t i = 1; i < seen.size(); ++i) ASSERT_LT(seen[i - 1], seen[i]);  // in order, each once
  auto row = db_->read_platform([&](Tx& tx) {
    return tx.query("SELECT last_error, attempts, delivered_at FROM box_db.outbox WHERE type = 'poison'")
        .rows.at(0);
  });
  EXPECT_EQ(row.text(0), "cannot handle");
  EXPECT_EQ(row.integer(1), OutboxRelay::kMaxAttempts);
  EXPECT_FALSE(row.is_null(2));
  EXPECT_EQ(relay.delivered_total(), n - 1);
  EXPECT_GE(sunk, static_cast<size_t>(n));  // at least once: a batch stopped part way goes again
  EXPECT_EQ(relay.poll(), 0u);
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
