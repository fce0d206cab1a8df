#include "core/event_feed.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "common/clock.hpp"
#include "common/ids.hpp"
#include "core/store.hpp"

namespace cdx::core {
namespace {

using namespace std::chrono_literals;

// A throwaway cdx_db with the event log and the cursors (the columns core's migrations 5 and 6 create).
class EventFeedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    init_crypto();
    dir_ = std::filesystem::temp_directory_path() / ("cdx-feed-" + random_token(10));
    factory_ = db::make_sqlite_factory(dir_.string());
    db_ = factory_->open("cdx_db");
    db_->migrate({{1, "log", R"SQL(
CREATE TABLE cdx_db.events (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, tenant_id TEXT NOT NULL,
  type TEXT NOT NULL, source TEXT NOT NULL, subject TEXT, actor TEXT, payload TEXT NOT NULL, created_at TEXT NOT NULL,
  recorded_at TEXT NOT NULL);
CREATE TABLE cdx_db.event_cursors (name TEXT PRIMARY KEY, seq BIGINT NOT NULL, updated_at TEXT NOT NULL,
  last_error TEXT);
)SQL"}});
    store_ = std::make_unique<Store>(db_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void record(const std::string& tenant, const std::string& type, int n = 1) {
    std::vector<db::OutboxEvent> events;
    for (int i = 0; i < n; ++i) {
      db::OutboxEvent e;
      e.id = new_uuid_v7();
      e.schema = "crm_db";
      e.tenant_id = tenant;
      e.type = type;
      e.payload = {{"contact", {{"id", "c-" + std::to_string(i)}}}};
      e.created_at = format_rfc3339(Clock::now());
      events.push_back(std::move(e));
    }
    store_->record_events(events);
  }

  template <class F>
  static bool eventually(F f) {
    for (int i = 0; i < 300; ++i) {
      if (f()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return f();
  }

  std::filesystem::path dir_;
  std::unique_ptr<db::ConnectionFactory> factory_;
  std::shared_ptr<db::Database> db_;
  std::unique_ptr<Store> store_;
};

TEST_F(EventFeedTest, ADurableSubscriberStartsAtTheEndAndKeepsItsPlaceAcrossRestarts) {
  record("a", "crm.contact.created", 3);  // before the subscriber existed: not its business
  std::mutex mu;
  std::vector<int64_t> seen;
  auto subscriber = [&](db::Tx* tx, const std::vector<LoggedEvent>& batch) {
    ASSERT_NE(tx, nullptr);
    std::lock_guard lock(mu);
    for (const auto& e : batch) seen.push_back(e.seq);
  };
  {
    EventFeed feed(db_);
    feed.add_durable("counter", subscriber);
    feed.start();
    ASSERT_TRUE(eventually([&] { return feed.cursor("counter").has_value(); }));
    EXPECT_EQ(*feed.cursor("counter"), 3);
    record("a", "crm.contact.created", 2);
    feed.notify();
    ASSERT_TRUE(eventually([&] {
      std::lock_guard lock(mu);
      return seen.size() == 2;
    }));
    EXPECT_EQ(seen, (std::vector<int64_t>{4, 5}));
    feed.stop();
  }
  record("b", "crm.deal.won", 1);  // while no feed runs
  EventFeed again(db_);
  again.add_durable("counter", subscriber);
  again.drain();
  EXPECT_EQ(seen, (std::vector<int64_t>{4, 5, 6}));  // nothing twice, nothing lost
  EXPECT_EQ(*again.cursor("counter"), 6);
}

TEST_F(EventFeedTest, AFailingSubscriberRetriesAndDelaysOnlyItself) {
  EventFeed feed(db_);
  std::atomic<int> failures{0}, healthy{0}, flaky_done{0};
  feed.add_durable("flaky", [&](db::Tx*, const std::vector<LoggedEvent>& batch) {
    if (failures.fetch_add(1) < 1) throw std::runtime_error("receiver down");
    flaky_done += static_cast<int>(batch.size());
  });
  feed.add_durable("healthy", [&](db::Tx*, const std::vector<LoggedEvent>& batch) {
    healthy += static_cast<int>(batch.size());
  });
  feed.start();
  ASSERT_TRUE(eventually([&] { return feed.cursor("flaky") && feed.cursor("healthy"); }));
  record("a", "crm.contact.created", 4);
  feed.notify();
  ASSERT_TRUE(eventually([&] { return healthy.load() == 4; }));
  EXPECT_EQ(flaky_done.load(), 0);  // still backing off after its failure
  EXPECT_TRUE(eventually([&] {
    return db_->read_platform([&](db::Tx& tx) {
      auto r = tx.query("SELECT last_error FROM cdx_db.event_cursors WHERE name = 'flaky'");
      return !r.rows.at(0).is_null(0) && r.rows[0].text(0) == "receiver down";
    });
  }));
  ASSERT_TRUE(eventually([&] { return flaky_done.load() == 4; }));  // the same events, after the back-off
  feed.stop();
}

TEST_F(EventFeedTest, LiveListenersHearNewEventsAndReadAfterFilters) {
  record("a", "crm.contact.created", 1);
  EventFeed feed(db_);
  std::mutex mu;
  std::vector<std::string> heard;
  feed.add_live([&](const std::vector<LoggedEvent>& batch) {
    std::lock_guard lock(mu);
    for (const auto& e : batch) heard.push_back(e.tenant_id + ":" + e.type);
  });
  feed.start();
  record("b", "crm.deal.won", 1);
  record("a", "cms.entry.published", 1);
  feed.notify();
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return heard.size() == 2;
  }));
  EXPECT_EQ(heard, (std::vector<std::string>{"b:crm.deal.won", "a:cms.entry.published"}));

  EventFilter only_a{std::string("a"), {"crm."}};
  auto rows = feed.read_after(0, only_a, 10);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].type, "crm.contact.created");
  EXPECT_EQ(rows[0].subject, "c-0");
  EXPECT_EQ(feed.last_seq(), 3);
  EXPECT_TRUE((EventFilter{std::nullopt, {"cms.entry.published"}}.matches(rows[0])) == false);
  feed.stop();
}

}  // namespace
}  // namespace cdx::core
