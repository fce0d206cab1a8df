#include "kit/idempotency.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

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
    db_->migrate({Idempotency::migration(1, "idem_db")});
    idem_ = std::make_unique<Idempotency>(db_, workers_);
  }
  void TearDown() override {
    Clock::set_offset(std::chrono::seconds(0));
    std::filesystem::remove_all(dir_);
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
  WorkerPool workers_{1};
  std::unique_ptr<Idempotency> idem_;
  db::TenantScope a_ = db::testing::TestScopes::mint("tenant-a");
  db::TenantScope b_ = db::testing::TestScopes::mint("tenant-b");
  const std::string route_ = "POST /api/v1/things";
};

TEST_F(IdempotencyTest, TheFirstAnswerIsReplayedForTheSameRequest) {
  const std::string h = Idempotency::request_hash("POST /api/v1/things", R"({"a":1})");
  EXPECT_FALSE(idem_->begin(a_, route_, "k1", h));  // run the handler
  idem_->complete(a_, route_, "k1", {201, "application/json", R"({"id":"x"})"});
  auto again = idem_->begin(a_, route_, "k1", h);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 201);
  EXPECT_EQ(again->body, R"({"id":"x"})");
  EXPECT_EQ(again->content_type, "application/json");
}

TEST(Idempotency, RequestHashIsTheSha256OfMethodPathAndBody) {
  // Keys stored before the hash was computed in parts must still match.
  EXPECT_EQ(Idempotency::request_hash("POST /x", R"({"a":1})"), sha256_hex("POST /x\n{\"a\":1}"));
  EXPECT_NE(Idempotency::request_hash("POST /x", "{}"), Idempotency::request_hash("POST /y", "{}"));
}

TEST_F(IdempotencyTest, KeysArePerTenantAndRoute) {
  const std::string h = Idempotency::request_hash("POST /x", "{}");
  EXPECT_FALSE(idem_->begin(a_, route_, "k", h));
  idem_->complete(a_, route_, "k", {201, "application/json", "{}"});
  EXPECT_FALSE(idem_->begin(b_, route_, "k", h));
  EXPECT_FALSE(idem_->begin(a_, "POST /api/v1/other", "k", h));
}

TEST_F(IdempotencyTest, AnotherRequestWithTheSameKeyIs422AndARunningOne409) {
  EXPECT_FALSE(idem_->begin(a_, route_, "k", Idempotency::request_hash("POST /x", "{\"a\":1}")));
  // Still running: a retry must wait rather than run twice.
  EXPECT_EQ(
      code_of([&] { idem_->begin(a_, route_, "k", Idempotency::request_hash("POST /x", "{\"a\":1}")); }),
      Code::kConflict);
  EXPECT_EQ(
      code_of([&] { idem_->begin(a_, route_, "k", Idempotency::request_hash("POST /x", "{\"a\":2}")); }),
      Code::kValidationFailed);
}

TEST_F(IdempotencyTest, AFailedOrAbandonedFirstAttemptFreesTheKey) {
  const std::string h = Idempotency::request_hash("POST /x", "{}");
  EXPECT_FALSE(idem_->begin(a_, route_, "k", h));
  idem_->release(a_, route_, "k");  // the handler failed: a retry runs again
  EXPECT_FALSE(idem_->begin(a_, route_, "k", h));
  // The process died mid-request: after kStaleSeconds the key can be taken over.
  Clock::set_offset(std::chrono::seconds(Idempotency::kStaleSeconds + 1));
  EXPECT_FALSE(idem_->begin(a_, route_, "k", h));
}

TEST_F(IdempotencyTest, KeysExpireAfterTheRetention) {
  const std::string h = Idempotency::request_hash("POST /x", "{}");
  EXPECT_FALSE(idem_->begin(a_, route_, "k", h));
  idem_->complete(a_, route_, "k", {201, "application/json", "{}"});
  Clock::set_offset(std::chrono::seconds(Idempotency::kRetentionSeconds + 10));
  EXPECT_FALSE(idem_->begin(a_, route_, "k", Idempotency::request_hash("POST /x", "{\"new\":1}")));
}

TEST_F(IdempotencyTest, PurgeForgetsOnlyTheTenantsKeys) {
  const std::string h = Idempotency::request_hash("POST /x", "{}");
  for (const auto* scope : {&a_, &b_}) {
    EXPECT_FALSE(idem_->begin(*scope, route_, "k", h));
    idem_->complete(*scope, route_, "k", {201, "application/json", "{}"});
  }
  idem_->purge_tenant(a_);
  EXPECT_FALSE(idem_->begin(a_, route_, "k", h));  // forgotten: runs again
  EXPECT_TRUE(idem_->begin(b_, route_, "k", h));   // kept: replays
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
