// Idempotency-Key support for POST routes, usable by any module: the first answer to a key (per tenant and
// route) is stored in the module's own schema (<schema>.idempotency_keys, tenant data under RLS) and a
// retry with the same key and body gets that answer again, without running the handler a second time.
//   migrations.push_back(kit::Idempotency::migration(5, "crm_db"));
//   kit::Idempotency idem(db, workers);
//   router.add(Method::kPost, "/api/v1/crm/contacts", idem.wrap("POST /api/v1/crm/contacts", handler), doc);
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
  static constexpr int64_t kStaleSeconds = 60;              // an unfinished claim older than this is abandoned

  Idempotency(std::shared_ptr<db::Database> db, WorkerPool& workers) : db_(std::move(db)), workers_(workers) {}

  // The migration that creates <schema>.idempotency_keys (a tenant table: listed for RLS).
  static db::Migration migration(int version, const std::string& schema);

  // Wraps a POST handler. Without the header the handler runs as is. With it:
  // - first use: the handler runs; a 2xx answer is stored, anything else frees the key for a retry;
  // - same key, same request: the stored answer again, with `Idempotent-Replayed: true`;
  // - same key, another request (body or path): 422 naming Idempotency-Key;
  // - same key while the first request still runs: 409.
  http::AsyncHandler wrap(std::string route_key, http::AsyncHandler handler);

  // The blocking steps behind wrap(), public for tests. begin() claims the key and answers nullopt (run
  // the handler), or the stored answer to replay; it throws cdx::Error for a mismatch or a running twin.
  std::optional<StoredAnswer> begin(const db::TenantScope& scope, const std::string& route_key,
                                    const std::string& key, const std::string& request_hash);
  void complete(const db::TenantScope& scope, const std::string& route_key, const std::string& key,
                const StoredAnswer& answer);
  void release(const db::TenantScope& scope, const std::string& route_key, const std::string& key);
  // The single-transaction form (the kit's writes): lookup() answers a completed twin's stored answer (422
  // for another request under the key, 409 while a legacy claim runs); claim() inserts the key inside the
  // write's own transaction (a concurrent twin waits on it, then fails with db::UniqueViolation) and
  // store() records the answer there, so the answer commits with the change or not at all.
  std::optional<StoredAnswer> lookup(const db::TenantScope& scope, const std::string& route_key,
                                     const std::string& key, const std::string& request_hash);
  void claim(db::Tx& tx, const db::TenantScope& scope, const std::string& route_key, const std::string& key,
             const std::string& request_hash) const;
  void store(db::Tx& tx, const db::TenantScope& scope, const std::string& route_key, const std::string& key,
             const StoredAnswer& answer) const;
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
  WorkerPool& workers_;
};

}  // namespace cdx::kit
