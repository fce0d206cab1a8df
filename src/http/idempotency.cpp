#include "http/idempotency.hpp"

#include <sodium.h>

#include <chrono>
#include <exception>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "db/async.hpp"

namespace cdx::http {

namespace {

// Response::content_type is a view: a replayed answer must point at storage that outlives the request.
std::string_view stable_content_type(const std::string& stored) {
  static constexpr std::string_view kKnown[] = {"application/json", "text/csv; charset=utf-8",
                                                "text/plain; charset=utf-8"};
  for (std::string_view k : kKnown)
    if (stored == k) return k;
  return "application/json";
}

std::string seconds_ago(int64_t s) { return format_rfc3339(Clock::now() - std::chrono::seconds(s)); }

}  // namespace

db::Migration Idempotency::migration(int version, const std::string& schema) {
  db::Migration m;
  m.version = version;
  m.name = "idempotency keys";
  m.sql = "CREATE TABLE " + schema +
          ".idempotency_keys (\n"
          "  tenant_id TEXT NOT NULL,\n"
          "  route TEXT NOT NULL,\n"
          "  key TEXT NOT NULL,\n"
          "  request_hash TEXT NOT NULL,\n"
          "  status INTEGER,\n"  // NULL while the first request runs
          "  content_type TEXT,\n"
          "  body TEXT,\n"
          "  created_at TEXT NOT NULL,\n"
          "  PRIMARY KEY (tenant_id, route, key)\n"
          ");\n"
          "CREATE INDEX idempotency_keys_created ON " +
          schema + ".idempotency_keys (tenant_id, created_at);\n";
  m.tenant_tables = {schema + ".idempotency_keys"};
  return m;
}

// SHA-256 of "<method and path>\n<body>", fed in parts: a 32 MiB import body is not copied to be hashed.
std::string Idempotency::request_hash(std::string_view method_and_path, std::string_view body) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  const auto feed = [&st](std::string_view part) {
    crypto_hash_sha256_update(&st, reinterpret_cast<const unsigned char*>(part.data()), part.size());
  };
  feed(method_and_path);
  feed("\n");
  feed(body);
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&st, digest);
  char hex[2 * crypto_hash_sha256_BYTES + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return hex;
}

std::optional<std::string> Idempotency::key_problem(std::string_view key) {
  if (key.empty() || key.size() > kMaxKeyLength) return "must be 1 to 255 characters long";
  for (char c : key) {
    if (c < 0x21 || c > 0x7e) return "must be visible ASCII characters (a UUID is a good key)";
  }
  return std::nullopt;
}

std::optional<StoredAnswer> Idempotency::begin(const db::TenantScope& scope, const std::string& route_key,
                                               const std::string& key, const std::string& request_hash) {
  return db_->write(scope, [&](db::Tx& tx) { return claim(tx, scope, route_key, key, request_hash); });
}

void Idempotency::complete(const db::TenantScope& scope, const std::string& route_key, const std::string& key,
                           const StoredAnswer& answer) {
  db_->write(scope, [&](db::Tx& tx) { record(tx, scope, route_key, key, answer); });
}

void Idempotency::release(const db::TenantScope& scope, const std::string& route_key,
                          const std::string& key) {
  db_->write(scope, [&](db::Tx& tx) { unclaim(tx, scope, route_key, key); });
}

std::optional<StoredAnswer> Idempotency::claim(db::Tx& tx, const db::TenantScope& scope, const std::string& route_key,
                                               const std::string& key, const std::string& request_hash) const {
  const std::string now = format_rfc3339(Clock::now());
  const std::string expired = seconds_ago(kRetentionSeconds);
  const std::string stale = seconds_ago(kStaleSeconds);
  tx.lock(db_->schema() + ".idempotency:" + scope.tenant_id() + ":" + route_key + ":" + key);
  tx.query("DELETE FROM " + table() + " WHERE tenant_id = $1 AND created_at < $2", {scope.tenant_id(), expired});
  auto res = tx.query("SELECT request_hash, status, content_type, body, created_at FROM " + table() +
                          " WHERE tenant_id = $1 AND route = $2 AND key = $3",
                      {scope.tenant_id(), route_key, key});
  if (res.empty()) {
    tx.query("INSERT INTO " + table() +
                 " (tenant_id, route, key, request_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
             {scope.tenant_id(), route_key, key, request_hash, now});
    return std::nullopt;
  }
  const db::Row& row = res.rows[0];
  if (row.text(0) != request_hash)
    throw Error::validation(
        {{"Idempotency-Key", "was already used with a different request; use a new key for a new request"}});
  if (row.is_null(1)) {
    if (row.text(4) >= stale)
      throw Error(Code::kConflict,
                  "A request with this Idempotency-Key is still being processed; retry after it has finished.");
    // The first attempt died without finishing (a crash): this retry takes the key over.
    tx.query("UPDATE " + table() + " SET created_at = $4 WHERE tenant_id = $1 AND route = $2 AND key = $3",
             {scope.tenant_id(), route_key, key, now});
    return std::nullopt;
  }
  return StoredAnswer{static_cast<int>(row.integer(1)), row.opt_text(2).value_or("application/json"),
                      row.opt_text(3).value_or("")};
}

void Idempotency::record(db::Tx& tx, const db::TenantScope& scope, const std::string& route_key,
                        const std::string& key, const StoredAnswer& answer) const {
  tx.query("UPDATE " + table() +
               " SET status = $4, content_type = $5, body = $6 WHERE tenant_id = $1 AND route = $2 AND key = $3",
           {scope.tenant_id(), route_key, key, static_cast<int64_t>(answer.status), answer.content_type,
            answer.body});
}

void Idempotency::unclaim(db::Tx& tx, const db::TenantScope& scope, const std::string& route_key,
                       const std::string& key) const {
  tx.query("DELETE FROM " + table() + " WHERE tenant_id = $1 AND route = $2 AND key = $3 AND status IS NULL",
           {scope.tenant_id(), route_key, key});
}

void Idempotency::purge_tenant(const db::TenantScope& scope) {
  db_->write(scope, [&](db::Tx& tx) {
    tx.query("DELETE FROM " + table() + " WHERE tenant_id = $1", {scope.tenant_id()});
  });
}

AsyncHandler Idempotency::wrap(std::string route_key, AsyncHandler handler) {
  return [this, route_key = std::move(route_key), handler = std::move(handler)](Context& ctx) -> Task<void> {
    const std::string_view header = ctx.req.header(kHeader);
    if (header.empty() || !ctx.tenant) {
      co_await handler(ctx);
      co_return;
    }
    if (auto why = key_problem(header)) throw Error::validation({{"Idempotency-Key", *why}});
    const std::string key(header);
    const db::TenantScope scope = *ctx.tenant;
    // The claim runs on the database's writer, which must not spend its time hashing: a large body (an
    // import) is hashed on a worker, a small one here.
    const std::string target = "POST " + std::string(ctx.req.target);
    std::string hash;
    if (ctx.req.body.size() > kInlineHashLimit) {
      hash = co_await workers_.run([&] { return request_hash(target, ctx.req.body); });
    } else {
      hash = request_hash(target, ctx.req.body);
    }
    auto stored = co_await db::write_async(
        *db_, workers_, scope, [&](db::Tx& tx) { return claim(tx, scope, route_key, key, hash); });
    if (stored) {
      ctx.res.status = stored->status;
      ctx.res.content_type = stable_content_type(stored->content_type);
      ctx.res.body = std::move(stored->body);
      ctx.res.header("Idempotent-Replayed", "true");
      co_return;
    }
    std::exception_ptr failure;
    try {
      co_await handler(ctx);
    } catch (...) {
      failure = std::current_exception();
    }
    const bool success = !failure && ctx.res.status >= 200 && ctx.res.status < 300;
    if (!success) {
      // Nothing was created (or the outcome is an error the client may fix): free the key for a retry.
      try {
        co_await db::write_async(*db_, workers_, scope, [&](db::Tx& tx) { unclaim(tx, scope, route_key, key); });
      } catch (const std::exception& e) {
        log::error("idempotency key release failed", {{"route", route_key}, {"error", e.what()}});
      }
      if (failure) std::rethrow_exception(failure);
      co_return;
    }
    const StoredAnswer answer{ctx.res.status, std::string(ctx.res.content_type), ctx.res.body};
    try {
      co_await db::write_async(*db_, workers_, scope,
                               [&](db::Tx& tx) { record(tx, scope, route_key, key, answer); });
    } catch (const std::exception& e) {
      // The change is committed: answer it. The key stays claimed and is taken over once stale.
      log::error("idempotency key completion failed", {{"route", route_key}, {"error", e.what()}});
    }
  };
}

}  // namespace cdx::http
