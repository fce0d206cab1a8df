#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <future>
#include <thread>

#include "db/database.hpp"
#include "db/testing.hpp"

namespace cdx::db {
namespace {

class SqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cdx-sqlite-test-" + std::to_string(::getpid()) + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    factory_ = make_sqlite_factory(dir_.string());
    db_ = factory_->open("t_db");
    db_->migrate({{1, "items", "CREATE TABLE t_db.items (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, n INTEGER);"
                               "CREATE INDEX items_tenant ON t_db.items (tenant_id, id);",
                   {"t_db.items"}}});
  }
  void TearDown() override {
    db_.reset();
    factory_.reset();
    std::filesystem::remove_all(dir_);
  }
  int64_t count() {
    return db_->read_platform([](Tx& tx) { return tx.query("SELECT COUNT(*) FROM t_db.items").rows.at(0).integer(0); });
  }
  std::filesystem::path dir_;
  std::unique_ptr<ConnectionFactory> factory_;
  std::shared_ptr<Database> db_;
};

TEST_F(SqliteTest, MigrationsAreRecordedOnce) {
  db_->migrate({{1, "items", "CREATE TABLE t_db.items (id TEXT PRIMARY KEY)", {}}});  // already applied: no-op
  auto versions = db_->read_platform(
      [](Tx& tx) { return tx.query("SELECT COUNT(*) FROM t_db.schema_migrations").rows.at(0).integer(0); });
  EXPECT_EQ(versions, 1);
}

TEST_F(SqliteTest, FailedMigrationLeavesNoTrace) {
  EXPECT_THROW(db_->migrate({{2, "broken", "CREATE TABLE t_db.half (id TEXT); SELECT no_such_function();", {}}}),
               std::runtime_error);
  auto tables = db_->read_platform([](Tx& tx) {
    return tx.query("SELECT COUNT(*) FROM t_db.sqlite_master WHERE name = 'half'").rows.at(0).integer(0);
  });
  EXPECT_EQ(tables, 0);
}

TEST_F(SqliteTest, ConcurrentWritesAreAllCommittedAndFailuresStayIsolated) {
  const auto scope = testing::TestScopes::mint("tenant-a");
  std::atomic<int> ok{0}, duplicates{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        // Every fifth write reuses an id: it must fail alone, without taking its batch with it.
        const std::string id = (i % 5 == 4) ? "dup-" + std::to_string(t) : "id-" + std::to_string(t) + "-" + std::to_string(i);
        try {
          db_->write(scope, [&](Tx& tx) {
            tx.query("INSERT INTO t_db.items (id, tenant_id, n) VALUES ($1, $2, $3)", {id, scope.tenant_id(), i});
          });
          ++ok;
        } catch (const UniqueViolation&) {
          ++duplicates;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load() + duplicates.load(), 8 * 40);
  EXPECT_EQ(duplicates.load(), 8 * 7);  // 8 "dup" ids per thread, the first of each succeeds
  EXPECT_EQ(count(), ok.load());
}

TEST_F(SqliteTest, ThrowingJobRollsBackOnlyItsOwnWrites) {
  const auto scope = testing::TestScopes::mint("tenant-a");
  EXPECT_THROW(db_->write(scope,
                          [&](Tx& tx) {
                            tx.query("INSERT INTO t_db.items (id, tenant_id) VALUES ('a', $1)", {scope.tenant_id()});
                            throw std::runtime_error("changed my mind");
                          }),
               std::runtime_error);
  db_->write(scope, [&](Tx& tx) { tx.query("INSERT INTO t_db.items (id, tenant_id) VALUES ('b', $1)", {scope.tenant_id()}); });
  EXPECT_EQ(count(), 1);
}

TEST_F(SqliteTest, ANestedWriteJoinsTheOuterTransaction) {
  const auto scope = testing::TestScopes::mint("tenant-a");
  const auto other = testing::TestScopes::mint("tenant-b");
  auto insert = [&](const std::string& id) {
    db_->write(scope, [&](Tx& tx) { tx.query("INSERT INTO t_db.items (id, tenant_id) VALUES ($1, $2)", {id, scope.tenant_id()}); });
  };
  // What the nested write did rolls back with the outer one, and commits with it.
  EXPECT_THROW(db_->write(scope,
                          [&](Tx&) {
                            insert("inner");
                            throw std::runtime_error("the outer write fails after the inner one");
                          }),
               std::runtime_error);
  EXPECT_EQ(count(), 0);
  db_->write(scope, [&](Tx&) {
    insert("inner");
    EXPECT_EQ(db_->read(scope, [&](Tx& tx) { return tx.query("SELECT id FROM t_db.items").rows.size(); }), 1u)
        << "a read inside the write sees its changes";
  });
  EXPECT_EQ(count(), 1);
  // Another tenant's write cannot hide inside this one.
  EXPECT_THROW(db_->write(scope, [&](Tx&) { db_->write(other, [](Tx&) {}); }), std::logic_error);
}

TEST_F(SqliteTest, DataSurvivesReopening) {
  const auto scope = testing::TestScopes::mint("tenant-a");
  db_->write(scope, [&](Tx& tx) { tx.query("INSERT INTO t_db.items (id, tenant_id) VALUES ('kept', $1)", {scope.tenant_id()}); });
  db_.reset();
  factory_ = make_sqlite_factory(dir_.string());
  db_ = factory_->open("t_db");
  EXPECT_EQ(count(), 1);
}

// A job whose finish() fulfils a promise: what a holder submits, awaited here without a coroutine.
class Job final : public WriteJob {
 public:
  explicit Job(std::function<void(Tx&)> fn) : fn_(std::move(fn)) {}
  void run(Tx& tx) override { fn_(tx); }
  void finish(std::exception_ptr error) noexcept override {
    if (error)
      done_.set_exception(error);
    else
      done_.set_value();
  }
  std::future<void> done() { return done_.get_future(); }

 private:
  std::function<void(Tx&)> fn_;
  std::promise<void> done_;
};

TEST_F(SqliteTest, AHoldParksItsTenantsWritesOnlyAndItsHolderWritesThrough) {
  const auto a = testing::TestScopes::mint("tenant-a"), b = testing::TestScopes::mint("tenant-b");
  auto insert = [&](const TenantScope& s, const char* id) {
    db_->write(s, [&](Tx& tx) {
      tx.query("INSERT INTO t_db.items (id, tenant_id) VALUES ($1, $2)", {id, s.tenant_id()});
    });
  };
  std::unique_ptr<WriteHold> hold = db_->hold_writes(a);
  ASSERT_NE(hold, nullptr);
  EXPECT_THROW(db_->hold_writes(a), std::logic_error);  // one hold per tenant

  auto parked = std::async(std::launch::async, [&] { insert(a, "a-waits"); });
  insert(b, "b-goes");  // another tenant's write is not held
  for (const char* id :
       {"a-holder-1", "a-holder-2"}) {  // the first through the ordinary queue, then the bulk lane
    auto job = std::make_unique<Job>([&, id](Tx& tx) {
      tx.query("INSERT INTO t_db.items (id, tenant_id) VALUES ($1, $2)", {id, a.tenant_id()});
    });
    auto done = job->done();
    hold->submit(std::move(job));
    done.get();
  }
  // Parked, however long we wait: it runs when the hold ends.
  EXPECT_EQ(parked.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  EXPECT_EQ(count(), 3);
  hold.reset();
  parked.get();
  EXPECT_EQ(count(), 4);
  insert(a, "a-after");
  EXPECT_EQ(count(), 5);
}

}  // namespace
}  // namespace cdx::db
