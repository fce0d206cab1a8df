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
      tx.query("INSERT INTO box_db.things (id, tenant_id) VALUES ($1, $2)", {new_uuid_v7(), scope.tenant_id()});
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
    return tx.query("SELECT last_error, attempts FROM box_db.outbox WHERE type = 'poison'").rows.at(0).text(0);
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

}  // namespace
}  // namespace cdx::db
