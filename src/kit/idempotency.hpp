// Idempotency-Key support for POST routes, usable by any module: the first answer to a key (per tenant and
// route) is stored in the module's own schema (<schema>.idempotency_keys, tenant data under RLS) and a
// retry with the same key and body gets that answer again, without running the handler a second time.
// The answer is stored in the same transaction as the change (see Kit::write_answer).
//   migrations.push_back(kit::Idempotency::migration(5, "crm_db"));
//   kit::Idempotency idem(db);  kit::Kit kit(db, outbox, workers, idem);
//   co_await kit.write_answer(ctx, "POST /api/v1/crm/deals", [&](db::Tx&) { … ctx.res.json(201, …); });
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/worker_pool.hpp"
#include "db/database.hpp"
#include "http/router.hpp"

namespace cdx::kit {

// The stored answer of a completed request.
struct StoredAnswer {
  int status = 200;
  std::string content_type;
  std::string body;
};

class Idempotency {
 public:
  static constexpr std::string_view kHeader = "idempotency-key";
  static constexpr size_t kMaxKeyLength = 255;
  static constexpr int64_t kRetentionSeconds = 24 * 3600;  // a key is remembered this long

  explicit Idempotency(std::shared_ptr<db::Database> db) : db_(std::move(db)) {}

  // The migration that creates <schema>.idempotency_keys (a tenant table: listed for RLS).
  static db::Migration migration(int version, const std::string& schema);

  // Used by Kit::write_answer, which runs them around a POST's write, in its transaction:
  // - lookup(): a completed request's stored answer, to replay with `Idempotent-Replayed: true`; 422
  //   naming Idempotency-Key when the key was used for another request (body or path);
  // - claim(): inserts the key in the write's own transaction. A concurrent twin waits on it, then fails
  //   with db::UniqueViolation and replays the stored answer;
  // - store() records a 2xx answer, release() drops the claim of any other: the answer commits with the
  //   change it describes or not at all, so a crash can never leave a key that lets a retry write twice.
  std::optional<StoredAnswer> lookup(const db::TenantScope& scope, const std::string& route_key,
                                     const std::string& key, const std::string& request_hash);
  void claim(db::Tx& tx, const db::TenantScope& scope, const std::string& route_key, const std::string& key,
             const std::string& request_hash) const;
  void store(db::Tx& tx, const db::TenantScope& scope, const std::string& route_key, const std::string& key,
             const StoredAnswer& answer) const;
  void release(db::Tx& tx, const db::TenantScope& scope, const std::string& route_key, const std::string& key) const;
  // Response::content_type is a view: a replayed answer points at storage that outlives the request.
  static std::string_view stable_content_type(const std::string& stored);

  // Forgets every key of the tenant (tenant purge).
  void purge_tenant(const db::TenantScope& scope);

  static std::string request_hash(std::string_view method_and_path, std::string_view body);
  // nullopt when acceptable; otherwise the reason (1–255 visible ASCII characters).
  static std::optional<std::string> key_problem(std::string_view key);

 private:
  std::string table() const { return db_->schema() + ".idempotency_keys"; }
  std::shared_ptr<db::Database> db_;
};

}  // namespace cdx::kit
