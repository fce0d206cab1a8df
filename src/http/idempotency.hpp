// Idempotency-Key support for POST routes, usable by any module: the first answer to a key (per tenant and
// route) is stored in the module's own schema (<schema>.idempotency_keys, tenant data under RLS) and a
// retry with the same key and body gets that answer again, without running the handler a second time.
//   migrations.push_back(http::Idempotency::migration(5, "crm_db"));
//   http::Idempotency idem(db, workers);
//   router.add(Method::kPost, "/api/v1/crm/contacts", idem.wrap("POST /api/v1/crm/contacts", handler), doc);
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/worker_pool.hpp"
#include "db/database.hpp"
#include "http/router.hpp"

namespace cdx::http {

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
  AsyncHandler wrap(std::string route_key, AsyncHandler handler);

  // The blocking steps behind wrap(), public for tests. begin() claims the key and answers nullopt (run
  // the handler), or the stored answer to replay; it throws cdx::Error for a mismatch or a running twin.
  std::optional<StoredAnswer> begin(const db::TenantScope& scope, const std::string& route_key,
                                    const std::string& key, const std::string& request_hash);
  void complete(const db::TenantScope& scope, const std::string& route_key, const std::string& key,
                const StoredAnswer& answer);
  void release(const db::TenantScope& scope, const std::string& route_key, const std::string& key);
  // Forgets every key of the tenant (tenant purge).
  void purge_tenant(const db::TenantScope& scope);

  static std::string request_hash(std::string_view method_and_path, std::string_view body);
  // nullopt when acceptable; otherwise the reason (1–255 visible ASCII characters).
  static std::optional<std::string> key_problem(std::string_view key);

 private:
  // Bodies up to this size are hashed on the I/O thread (a few microseconds), larger ones on a worker.
  static constexpr size_t kInlineHashLimit = 64 * 1024;

  // The steps inside the caller's write transaction.
  std::optional<StoredAnswer> claim(db::Tx& tx, const db::TenantScope& scope, const std::string& route_key,
                                    const std::string& key, const std::string& request_hash) const;
  void record(db::Tx& tx, const db::TenantScope& scope, const std::string& route_key, const std::string& key,
             const StoredAnswer& answer) const;
  void unclaim(db::Tx& tx, const db::TenantScope& scope, const std::string& route_key, const std::string& key) const;

  std::string table() const { return db_->schema() + ".idempotency_keys"; }
  std::shared_ptr<db::Database> db_;
  WorkerPool& workers_;
};

}  // namespace cdx::http
