// Idempotency keys stored in the write's own transaction, on a throwaway SQLite database.
#include "kit/idempotency.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/ids.hpp"
#include "db/testing.hpp"

namespace cdx::kit {
namespace {

class IdempotencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    init_crypto();
    dir_ = std::filesystem::temp_directory_path() / ("cdx-idem-" + random_token(10));
    factory_ = db::make_sqlite_factory(dir_.string());
    db_ = factory_->open("idem_db");
    db_->migrate(
        {Idempotency::migration(1, "idem_db"),
         {2, "things", "CREATE TABLE idem_db.things (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL);"}});
    idem_ = std::make_unique<Idempotency>(db_);
  }
  void TearDown() override {
    Clock::set_offset(std::chrono::seconds(0));
    std::filesystem::remove_all(dir_);
  }

  // What Kit::write_answer does around a handler that makes one thing: the answer (or the replay).
  StoredAnswer post(const db::TenantScope& scope, const std::string& key, const std::string& body,
                    bool fail = false, const std::string& route = "POST /api/v1/things") {
    const std::string hash = Idempotency::request_hash(route, body);
    if (auto replay = idem_->lookup(scope, route, key, hash)) return *replay;
    try {
      return db_->write(scope, [&](db::Tx& tx) {
        idem_->claim(tx, scope, route, key, hash);
        const std::string id = new_uuid_v7();
        tx.query("INSERT INTO idem_db.things (id, tenant_id) VALUES ($1, $2)", {id, scope.tenant_id()});
        if (fail) throw Error(Code::kConflict, "the handler failed after its write");
        StoredAnswer answer{201, "application/json", id};
        idem_->store(tx, scope, route, key, answer);
        return answer;
      });
    } catch (const db::UniqueViolation&) {
      return *idem_->lookup(scope, route, key, hash);
    }
  }
  int64_t things(const db::TenantScope& scope) {
    return db_->read(scope, [&](db::Tx& tx) {
      return tx.query("SELECT COUNT(*) FROM idem_db.things WHERE tenant_id = $1", {scope.tenant_id()})
          .rows[0]
          .integer(0);
    });
  }
  Code code_of(const std::function<void()>& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return e.code();
    }
    return Code::kInternal;
  }

  std::filesystem::path dir_;
  std::unique_ptr<db::ConnectionFactory> factory_;
  std::shared_ptr<db::Database> db_;
  std::unique_ptr<Idempotency> idem_;
  db::TenantScope a_ = db::testing::TestScopes::mint("tenant-a");
  db::TenantScope b_ = db::testing::TestScopes::mint("tenant-b");
};

TEST_F(IdempotencyTest, TheFirstAnswerIsReplayedAndNothingIsMadeTwice) {
  const StoredAnswer first = post(a_, "k1", R"({"a":1})");
  const StoredAnswer again = post(a_, "k1", R"({"a":1})");
  EXPECT_EQ(again.body, first.body);
  EXPECT_EQ(again.status, 201);
  EXPECT_EQ(things(a_), 1);
}

TEST(Idempotency, RequestHashIsTheSha256OfMethodPathAndBody) {
  EXPECT_EQ(Idempotency::request_hash("POST /x", R"({"a":1})"), sha256_hex("POST /x\n{\"a\":1}"));
  EXPECT_NE(Idempotency::request_hash("POST /x", "{}"), Idempotency::request_hash("POST /y", "{}"));
}

TEST_F(IdempotencyTest, KeysArePerTenantAndRoute) {
  post(a_, "k", "{}");
  post(b_, "k", "{}");
  post(a_, "k", "{}", false, "POST /api/v1/other");
  EXPECT_EQ(things(a_), 2);
  EXPECT_EQ(things(b_), 1);
}

TEST_F(IdempotencyTest, AnotherRequestWithTheSameKeyIs422) {
  post(a_, "k", R"({"a":1})");
  EXPECT_EQ(code_of([&] { post(a_, "k", R"({"a":2})"); }), Code::kValidationFailed);
}

TEST_F(IdempotencyTest, AFailedAttemptLeavesNeitherItsChangeNorItsKey) {
  EXPECT_EQ(code_of([&] { post(a_, "k", "{}", true); }), Code::kConflict);
  EXPECT_EQ(things(a_), 0) << "the write rolled back with the claim";
  post(a_, "k", "{}");  // the retry runs
  EXPECT_EQ(things(a_), 1);
}

TEST_F(IdempotencyTest, ConcurrentTwinsMakeOneThing) {
  std::vector<std::thread> threads;
  std::vector<std::string> bodies(8);
  for (size_t i = 0; i < bodies.size(); ++i)
    threads.emplace_back([&, i] { bodies[i] = post(a_, "twin", "{}").body; });
  for (auto& t : threads) t.join();
  EXPECT_EQ(things(a_), 1);
  for (const auto& b : bodies) EXPECT_EQ(b, bodies[0]);
}

TEST_F(IdempotencyTest, KeysExpireAfterTheRetentionAndArePruned) {
  post(a_, "k", "{}");
  post(a_, "old", "{}");
  post(b_, "theirs", "{}");
  Clock::set_offset(std::chrono::seconds(Idempotency::kRetentionSeconds + 10));
  post(a_, "k", R"({"new":1})");  // a new request under an expired key: no 422
  EXPECT_EQ(things(a_), 3);
  // The claim took the tenant's other expired keys with it (the table does not grow without bound), and
  // left other tenants' alone.
  auto keys = [&](const db::TenantScope& s) {
    return db_->read(s, [&](db::Tx& tx) {
      return tx.query("SELECT COUNT(*) FROM idem_db.idempotency_keys WHERE tenant_id = $1", {s.tenant_id()})
          .rows[0]
          .integer(0);
    });
  };
  EXPECT_EQ(keys(a_), 1);
  EXPECT_EQ(keys(b_), 1);
}

TEST_F(IdempotencyTest, PurgeForgetsOnlyTheTenantsKeys) {
  post(a_, "k", "{}");
  post(b_, "k", "{}");
  idem_->purge_tenant(a_);
  post(a_, "k", "{}");  // forgotten: runs again
  post(b_, "k", "{}");  // kept: replays
  EXPECT_EQ(things(a_), 2);
  EXPECT_EQ(things(b_), 1);
}

TEST_F(IdempotencyTest, KeyShape) {
  EXPECT_FALSE(Idempotency::key_problem("3f2b8c1e-0d4a-4f7e-9a61-2f7f0c9d1b2a"));
  EXPECT_TRUE(Idempotency::key_problem(""));
  EXPECT_TRUE(Idempotency::key_problem(std::string(256, 'a')));
  EXPECT_TRUE(Idempotency::key_problem("has space"));
  EXPECT_TRUE(Idempotency::key_problem("ünïcode"));
}

}  // namespace
}  // namespace cdx::kit
