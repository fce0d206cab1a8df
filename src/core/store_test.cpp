#include "core/store.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/ids.hpp"

namespace cdx::core {
namespace {

using nlohmann::json;

// The platform event log (core's migration 5) in a throwaway SQLite file.
class EventLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    init_crypto();
    dir_ = std::filesystem::temp_directory_path() / ("cdx-eventlog-" + random_token(10));
    factory_ = db::make_sqlite_factory(dir_.string());
    db_ = factory_->open("cdx_db");
    db_->migrate(
        {{1,
          "platform event log",
          "",
          {},
          "",
          "CREATE TABLE cdx_db.events (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, "
          "tenant_id TEXT NOT NULL, type TEXT NOT NULL, source TEXT NOT NULL, subject TEXT, actor TEXT, "
          "payload TEXT NOT NULL, created_at TEXT NOT NULL, recorded_at TEXT NOT NULL);"}});
    store_ = std::make_unique<Store>(db_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static db::OutboxEvent event(std::string text, json payload = nullptr) {
    db::OutboxEvent e;
    e.id = new_uuid_v7();
    e.schema = "crm_db";
    e.tenant_id = "t1";
    e.type = "crm.contact.created";
    e.created_at = "2026-12-05T08:00:00.000000Z";
    e.payload_text = std::move(text);
    e.payload = std::move(payload);
    return e;
  }
  std::vector<db::Row> rows() {
    return db_->read_platform([&](db::Tx& tx) {
      return tx.query("SELECT id, subject, actor, payload FROM cdx_db.events ORDER BY seq").rows;
    });
  }

  std::filesystem::path dir_;
  std::unique_ptr<db::ConnectionFactory> factory_;
  std::shared_ptr<db::Database> db_;
  std::unique_ptr<Store> store_;
};

TEST_F(EventLogTest, RecordsThePayloadTextAsItCameWithSubjectAndActor) {
  const std::string text = R"({"actor":{"id":"u1","type":"user"},"contact":{"email":"a@b.c","id":"c1"}})";
  std::vector<db::OutboxEvent> events{event(text),
                                      // No text: the object, dumped once.
                                      event("", {{"deal", {{"id", "d1"}}}}),
                                      // An escaped id: the scanner leaves it to the parser, same answer.
                                      event(R"({"entry":{"id":"e\"1"}})"),
                                      // Neither subject nor actor.
                                      event(R"({"n":1})"),
                                      // A deletion: the payload's own id.
                                      event(R"({"actor":{"id":"u1"},"contact":{"id":"c0"},"id":"c9"})")};
  store_->record_events(events);
  auto r = rows();
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(r[0].text(0), events[0].id);
  EXPECT_EQ(r[0].text(1), "c1");
  EXPECT_EQ(r[0].text(2), R"({"id":"u1","type":"user"})");
  EXPECT_EQ(r[0].text(3), text);
  EXPECT_EQ(r[1].text(1), "d1");
  EXPECT_TRUE(r[1].is_null(2));
  EXPECT_EQ(r[1].text(3), R"({"deal":{"id":"d1"}})");
  EXPECT_EQ(r[2].text(1), "e\"1");
  EXPECT_TRUE(r[3].is_null(1));
  EXPECT_TRUE(r[3].is_null(2));
  EXPECT_EQ(r[4].text(1), "c9");
}

TEST_F(EventLogTest, AnEventAlreadyRecordedIsSkippedInOrderAndWithinABatch) {
  std::vector<db::OutboxEvent> first{event(R"({"n":1})"), event(R"({"n":2})")};
  store_->record_events(first);
  // The same batch again (a relay that crashed before marking it), then one with a new event and a repeat.
  store_->record_events(first);
  std::vector<db::OutboxEvent> second{first[1], event(R"({"n":3})"), first[0]};
  store_->record_events(second);
  std::vector<db::OutboxEvent> twice{event(R"({"n":4})")};
  twice.push_back(twice[0]);
  store_->record_events(twice);
  auto r = rows();
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].text(3), R"({"n":1})");
  EXPECT_EQ(r[1].text(3), R"({"n":2})");
  EXPECT_EQ(r[2].text(3), R"({"n":3})");
  EXPECT_EQ(r[3].text(3), R"({"n":4})");
}

}  // namespace
}  // namespace cdx::core
