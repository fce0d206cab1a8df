#include "kit/idempotency.hpp"

#include <sodium.h>

#include <chrono>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/ids.hpp"

namespace cdx::kit {

namespace {

std::string seconds_ago(int64_t s) { return format_rfc3339(Clock::now() - std::chrono::seconds(s)); }

}  // namespace

std::string_view Idempotency::stable_content_type(const std::string& stored) {
  static constexpr std::string_view kKnown[] = {"application/json", "text/csv; charset=utf-8",
                                                "text/plain; charset=utf-8"};
  for (std::string_view k : kKnown)
    if (stored == k) return k;
  return "application/json";
}

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

std::optional<StoredAnswer> Idempotency::lookup(const db::TenantScope& scope, const std::string& route_key,
                                                const std::string& key, const std::string& request_hash) {
  auto res = db_->read(scope, [&](db::Tx& tx) {
    return tx.query("SELECT request_hash, status, content_type, body, created_at FROM " + table() +
                        " WHERE tenant_id = $1 AND route = $2 AND key = $3 AND created_at >= $4",
                    {scope.tenant_id(), route_key, key, seconds_ago(kRetentionSeconds)});
  });
  if (res.empty()) return std::nullopt;
  const db::Row& row = res.rows[0];
  if (row.text(0) != request_hash)
    throw Error::validation(
        {{"Idempotency-Key", "was already used with a different request; use a new key for a new request"}});
  if (row.is_null(1)) return std::nullopt;  // an unfinished claim of an earlier version: never an answer
  return StoredAnswer{static_cast<int>(row.integer(1)), row.opt_text(2).value_or("application/json"),
                      row.opt_text(3).value_or("")};
}

void Idempotency::claim(db::Tx& tx, const db::TenantScope& scope, const std::string& route_key,
                        const std::string& key, const std::string& request_hash) const {
  // The tenant's expired keys go (the table stays bounded by a day of keys), and so does an unfinished claim
  // of an earlier version under this key. A twin's claim that is not committed yet is invisible here: the
  // INSERT waits for it, then fails (UniqueViolation) if it committed.
  tx.query("DELETE FROM " + table() + " WHERE tenant_id = $1 AND created_at < $2",
           {scope.tenant_id(), seconds_ago(kRetentionSeconds)});
  tx.query("DELETE FROM " + table() + " WHERE tenant_id = $1 AND route = $2 AND key = $3 AND status IS NULL",
           {scope.tenant_id(), route_key, key});
  tx.query("INSERT INTO " + table() + " (tenant_id, route, key, request_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
           {scope.tenant_id(), route_key, key, request_hash, format_rfc3339(Clock::now())});
}

void Idempotency::store(db::Tx& tx, const db::TenantScope& scope, const std::string& route_key,
                        const std::string& key, const StoredAnswer& answer) const {
  tx.query("UPDATE " + table() +
               " SET status = $4, content_type = $5, body = $6 WHERE tenant_id = $1 AND route = $2 AND key = $3",
           {scope.tenant_id(), route_key, key, static_cast<int64_t>(answer.status), answer.content_type,
            answer.body});
}

void Idempotency::release(db::Tx& tx, const db::TenantScope& scope, const std::string& route_key,
                          const std::string& key) const {
  tx.query("DELETE FROM " + table() + " WHERE tenant_id = $1 AND route = $2 AND key = $3",
           {scope.tenant_id(), route_key, key});
}

void Idempotency::purge_tenant(const db::TenantScope& scope) {
  db_->write(scope, [&](db::Tx& tx) {
    tx.query("DELETE FROM " + table() + " WHERE tenant_id = $1", {scope.tenant_id()});
  });
}

}  // namespace cdx::kit
