#include "db/async.hpp"

#include <utility>  // before Asio's coroutine headers (GCC 12 + Boost 1.74)

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <filesystem>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "db/testing.hpp"

namespace cdx::db {
namespace {

namespace asio = boost::asio;

class AsyncWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cdx-async-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    factory_ = make_sqlite_factory(dir_.string());
    db_ = factory_->open("t_db");
    db_->migrate({{1, "items", "CREATE TABLE t_db.items (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, n INTEGER);",
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
  // Runs each coroutine to completion on one I/O thread and rethrows the first failure.
  static void run_all(std::vector<std::function<Task<void>()>> coroutines) {
    asio::io_context ioc;
    std::vector<std::future<void>> done;
    for (auto& c : coroutines) done.push_back(asio::co_spawn(ioc, std::move(c), asio::use_future));
    ioc.run();
    for (auto& f : done) f.get();
  }

  std::filesystem::path dir_;
  std::unique_ptr<ConnectionFactory> factory_;
  std::shared_ptr<Database> db_;
};

TEST_F(AsyncWriteTest, SqliteQueuesWritesWithoutAWorker) {
  // A pool without threads: a write that needed one would never finish.
  WorkerPool no_workers(0);
  const auto scope = testing::TestScopes::mint("tenant-a");
  EXPECT_TRUE(db_->queues_writes());
  int64_t answered = 0;
  run_all({[&]() -> Task<void> {
    answered = co_await write_async(*db_, no_workers, scope, [&](Tx& tx) {
      tx.query("INSERT INTO t_db.items (id, tenant_id, n) VALUES ('a', $1, 1)", {scope.tenant_id()});
      return tx.query("SELECT n FROM t_db.items WHERE id = 'a'").rows.at(0).integer(0);
    });
  }});
  EXPECT_EQ(answered, 1);
  EXPECT_EQ(count(), 1);
  no_workers.stop();
}

TEST_F(AsyncWriteTest, ManyConcurrentWritesAreAllCommittedAndAnswerTheirOwnAwaiter) {
  WorkerPool workers(2);
  const auto scope = testing::TestScopes::mint("tenant-a");
  constexpr int kWriters = 300;
  std::vector<int64_t> answers(kWriters, -1);
  std::vector<std::function<Task<void>()>> coroutines;
  for (int i = 0; i < kWriters; ++i) {
    coroutines.push_back([&, i]() -> Task<void> {
      const std::string id = "id-" + std::to_string(i);
      answers[i] = co_await write_async(*db_, workers, scope, [&](Tx& tx) {
        tx.query("INSERT INTO t_db.items (id, tenant_id, n) VALUES ($1, $2, $3)", {id, scope.tenant_id(), i * 7});
        return tx.query("SELECT n FROM t_db.items WHERE id = $1", {id}).rows.at(0).integer(0);
      });
    });
  }
  run_all(std::move(coroutines));
  for (int i = 0; i < kWriters; ++i) EXPECT_EQ(answers[i], i * 7) << "writer " << i;
  EXPECT_EQ(count(), kWriters);
}

TEST_F(AsyncWriteTest, AFailingJobRollsBackAloneAndItsErrorReachesItsAwaiter) {
  WorkerPool workers(2);
  const auto scope = testing::TestScopes::mint("tenant-a");
  db_->write(scope, [&](Tx& tx) {
    tx.query("INSERT INTO t_db.items (id, tenant_id, n) VALUES ('taken', $1, -1)", {scope.tenant_id()});
  });
  constexpr int kWriters = 200;
  std::vector<std::string> outcome(kWriters);
  std::vector<std::function<Task<void>()>> coroutines;
  for (int i = 0; i < kWriters; ++i) {
    coroutines.push_back([&, i]() -> Task<void> {
      try {
        co_await write_async(*db_, workers, scope, [&](Tx& tx) {
          // Every fifth job writes, then throws: its row must not survive. Every seventh reuses a taken id.
          const std::string id = i % 7 == 6 ? "taken" : "id-" + std::to_string(i);
          tx.query("INSERT INTO t_db.items (id, tenant_id, n) VALUES ($1, $2, $3)", {id, scope.tenant_id(), i});
          if (i % 5 == 4) throw std::runtime_error("job " + std::to_string(i));
        });
        outcome[i] = "ok";
      } catch (const UniqueViolation&) {
        outcome[i] = "duplicate";
      } catch (const std::runtime_error& e) {
        outcome[i] = e.what();
      }
    });
  }
  run_all(std::move(coroutines));
  int64_t ok = 0;
  for (int i = 0; i < kWriters; ++i) {
    if (i % 7 == 6) {
      EXPECT_EQ(outcome[i], "duplicate") << "writer " << i;
    } else if (i % 5 == 4) {
      EXPECT_EQ(outcome[i], "job " + std::to_string(i)) << "writer " << i;
    } else {
      EXPECT_EQ(outcome[i], "ok") << "writer " << i;
      ++ok;
    }
  }
  EXPECT_EQ(count(), ok + 1);
  const auto kept = db_->read_platform([](Tx& tx) {
    return tx.query("SELECT COUNT(*) FROM t_db.items WHERE n % 5 = 4").rows.at(0).integer(0);
  });
  EXPECT_EQ(kept, 0);  // every throwing job's insert was undone
}

TEST_F(AsyncWriteTest, BlockingAndAwaitedWritesShareTheWriter) {
  WorkerPool workers(2);
  const auto scope = testing::TestScopes::mint("tenant-a");
  std::thread blocking([&] {
    for (int i = 0; i < 100; ++i)
      db_->write(scope, [&](Tx& tx) {
        tx.query("INSERT INTO t_db.items (id, tenant_id, n) VALUES ($1, $2, $3)",
                 {"b-" + std::to_string(i), scope.tenant_id(), i});
      });
  });
  std::vector<std::function<Task<void>()>> coroutines;
  for (int i = 0; i < 100; ++i) {
    coroutines.push_back([&, i]() -> Task<void> {
      co_await write_platform_async(*db_, workers, [&](Tx& tx) {
        tx.query("INSERT INTO t_db.items (id, tenant_id, n) VALUES ($1, 'platform', $2)", {"a-" + std::to_string(i), i});
      });
    });
  }
  run_all(std::move(coroutines));
  blocking.join();
  EXPECT_EQ(count(), 200);
}

TEST_F(AsyncWriteTest, AWriteStartedInsideAJobJoinsItsTransaction) {
  WorkerPool workers(1);
  const auto scope = testing::TestScopes::mint("tenant-a");
  const auto other = testing::TestScopes::mint("tenant-b");
  bool failed = false, refused = false;
  run_all({[&]() -> Task<void> {
    // A service's own write inside the awaited one: one transaction, rolled back as one.
    try {
      co_await write_async(*db_, workers, scope, [&](Tx&) {
        db_->write(scope, [&](Tx& tx) { tx.query("INSERT INTO t_db.items (id, tenant_id) VALUES ('in', $1)", {scope.tenant_id()}); });
        throw std::runtime_error("the outer job fails after the inner write");
      });
    } catch (const std::runtime_error&) {
      failed = true;
    }
    co_await write_async(*db_, workers, scope, [&](Tx&) {
      db_->write(scope, [&](Tx& tx) { tx.query("INSERT INTO t_db.items (id, tenant_id) VALUES ('kept', $1)", {scope.tenant_id()}); });
    });
    // Another tenant cannot hide inside it.
    try {
      co_await write_async(*db_, workers, scope, [&](Tx&) { db_->write(other, [](Tx&) {}); });
    } catch (const std::logic_error&) {
      refused = true;
    }
  }});
  EXPECT_TRUE(failed);
  EXPECT_TRUE(refused);
  EXPECT_EQ(count(), 1);
}

TEST_F(AsyncWriteTest, AcknowledgedWritesSurviveReopening) {
  WorkerPool workers(1);
  const auto scope = testing::TestScopes::mint("tenant-a");
  run_all({[&]() -> Task<void> {
    co_await write_async(*db_, workers, scope, [&](Tx& tx) {
      tx.query("INSERT INTO t_db.items (id, tenant_id) VALUES ('kept', $1)", {scope.tenant_id()});
    });
  }});
  db_.reset();
  factory_ = make_sqlite_factory(dir_.string());
  db_ = factory_->open("t_db");
  EXPECT_EQ(count(), 1);
}

}  // namespace
}  // namespace cdx::db
